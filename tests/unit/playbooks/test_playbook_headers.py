"""Pure checks of the playbooks' parameters: every one starts with kr_, is documented in the playbook's header, and
its name without kr_ is refused by the playbook's first check (so an -e of the old name fails instead of being lost)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

PLAYBOOKS = sorted((Path(__file__).resolve().parents[3] / 'playbooks').glob('*.yml'))
# Old names that map to another kr_ name than kr_<old>.
RENAMED = {'task_timeout': 'kr_timeout'}


def header(path):
    lines = path.read_text().splitlines()[1:]
    return '\n'.join(line for line in lines[:next(i for i, line in enumerate(lines) if not line.startswith('#'))])


def body(path):
    return '\n'.join(line for line in path.read_text().splitlines() if not line.lstrip().startswith('#'))


def refused_names(path):
    """The names the 'Refuse the parameter names without kr_' task hides and checks, or None without that task."""
    for play in yaml.safe_load(path.read_text()):
        for task in play.get('tasks') or []:
            if (task.get('name') or '').startswith('Refuse the parameter names without kr_'):
                return sorted(name for name, value in task['vars'].items() if value == 'kohakuriver-unset')
    return None


@pytest.mark.parametrize('path', PLAYBOOKS, ids=lambda path: path.stem)
def test_every_parameter_a_playbook_reads_is_documented_with_kr_and_refused_without(path):
    documented = set(re.findall(r"-e '?(?:\{\")?([a-z_]+)", header(path)))
    # Read: a kr_ name in an expression; not one in a hint ('-e kr_x=...') nor one set for another playbook ('kr_x:').
    read = set(re.findall(r'(?<!-e )\bkr_[a-z_]+\b(?!:)', body(path))) - {'kr_task_timeout'}
    assert documented <= read | {'kohakuriver_environment_names'}, 'the header documents what the playbook does not read'
    assert all(name.startswith('kr_') for name in documented - {'kohakuriver_environment_names'}), documented
    assert read <= documented, 'read but not documented in the header: %s' % sorted(read - documented)
    refused = refused_names(path)
    if not read:
        assert refused is None
        return
    assert refused is not None, 'no check refuses the old names'
    assert sorted(RENAMED.get(name, 'kr_' + name) for name in refused) == sorted(
        list(read) + [new for old, new in RENAMED.items() if new in read]), refused


def test_site_passes_the_declared_environments_to_sync_under_its_kr_name():
    imports = yaml.safe_load((PLAYBOOKS[0].parent / 'site.yml').read_text())
    sync = [step for step in imports if step['ansible.builtin.import_playbook'] == 'kohakuriver.docker.sync'][0]
    assert list(sync['vars']) == ['kr_envs']


@pytest.mark.parametrize('path', [path for path in PLAYBOOKS if any(play.get('hosts') == 'kohakuriver_host'
                                                                    for play in yaml.safe_load(path.read_text()))],
                         ids=lambda path: path.stem)
def test_every_playbook_that_works_on_the_host_first_checks_there_is_exactly_one(path):
    first = yaml.safe_load(path.read_text())[0]
    assert first.get('ansible.builtin.import_playbook') == 'one_host.yml', first
