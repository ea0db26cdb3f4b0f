"""Pure checks of the roles and inventories: variable names, argument specs against defaults, and the example
inventories validated against the roles' argument specs (the same validation Ansible runs when a role starts)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

REPO = Path(__file__).resolve().parents[3]
ROLES = ('host', 'runner', 'environment')
SHARED = {'kohakuriver_docker_host', 'kohakuriver_shared_dir', 'kohakuriver_tarball_dir', 'kohakuriver_state_dir',
          'kohakuriver_environments', 'kohakuriver_gpus', 'kohakuriver_signing_key', 'kohakuriver_allowed_signers',
          'kohakuriver_require_signature'}
# The Docker daemon's registry settings (runner role): cluster or per-rack inventory variables beside kohakuriver_registry.
SHARED |= {'kohakuriver_registry_mirrors', 'kohakuriver_max_concurrent_downloads', 'kohakuriver_insecure_registries',
           'kohakuriver_registry_ca', 'kohakuriver_docker_daemon_json', 'kohakuriver_docker_certs_dir', 'kohakuriver_docker_reload',
           'kohakuriver_docker_pidfile'}
SPEC_KEYS = {'type', 'required', 'default', 'choices', 'elements', 'options', 'no_log', 'aliases',
             'mutually_exclusive', 'required_together', 'required_one_of', 'required_if', 'required_by'}
SHARED.add('kohakuriver_registry')  # the registry option's dict: the environment role pushes with it, runners pull
SHARED |= {'kohakuriver_registry_source', 'kohakuriver_registry_fallback_to_share'}  # how runners sync (image_sync, task)


def load(path):
    return yaml.safe_load(Path(path).read_text())


def entry_options(role, entry='main'):
    return load(REPO / 'roles' / role / 'meta' / 'argument_specs.yml')['argument_specs'][entry]['options']


def validator_spec(options):
    """An argument spec for ArgumentSpecValidator from role option docs (descriptions dropped, recursively)."""
    spec = {}
    for name, option in options.items():
        spec[name] = dict((key, value) for key, value in option.items() if key in SPEC_KEYS and key != 'options')
        if 'options' in option:
            spec[name]['options'] = validator_spec(option['options'])
    return spec


def inventory_vars(path):
    """host name -> merged variables, as ansible-inventory sees them."""
    listed = subprocess.run([str(Path(sys.executable).parent / 'ansible-inventory'), '-i', str(path), '--list'],
                            capture_output=True, text=True, check=True)
    data = json.loads(listed.stdout)
    return data, data['_meta']['hostvars']


@pytest.mark.parametrize('role', ROLES)
def test_role_variables_carry_the_role_prefix(role):
    prefix = 'kohakuriver_%s_' % role
    names = set(load(REPO / 'roles' / role / 'defaults' / 'main.yml')) | set(entry_options(role))
    assert sorted(name for name in names if not name.startswith(prefix) and name not in SHARED) == []
    internal = set(load(REPO / 'roles' / role / 'vars' / 'main.yml'))
    assert sorted(name for name in internal if not name.startswith(prefix + '_')) == []


@pytest.mark.parametrize('role', ROLES)
def test_every_default_is_documented_with_the_same_value(role):
    defaults = load(REPO / 'roles' / role / 'defaults' / 'main.yml')
    options = entry_options(role)
    assert sorted(set(defaults) ^ set(options)) == []
    for name, value in defaults.items():
        assert options[name].get('default') == value, name
        assert options[name]['description'], name


def test_host_docker_entry_point_is_a_subset_of_main():
    main, docker = entry_options('host'), entry_options('host', 'docker')
    assert set(docker) < set(main)
    assert all(docker[name] == main[name] for name in docker)


def test_runner_passes_every_option_of_the_host_docker_entry_point_it_sets():
    tasks = load(REPO / 'roles' / 'runner' / 'tasks' / 'main.yml')
    passed = tasks[0]['vars']
    assert set(passed) <= set(entry_options('host', 'docker'))
    assert all(value.startswith('{{ kohakuriver_runner_') for value in passed.values())


@pytest.fixture(params=['inventory.example', 'inventories/local/hosts.yml'])
def inventory(request, tmp_path):
    # The yaml inventory plugin reads only .yml/.yaml/.json names: use the example as a user would, copied.
    copy = tmp_path / 'inventory.yml'
    copy.write_text((REPO / request.param).read_text())
    return copy


def test_inventories_have_the_cluster_shape_and_pass_the_role_argument_specs(inventory):
    data, hostvars = inventory_vars(inventory)
    hosts, runners = data['kohakuriver_host']['hosts'], data['kohakuriver_runners']['hosts']
    assert len(hosts) == 1 and len(runners) >= 2
    for role, nodes in (('host', hosts), ('runner', runners), ('environment', hosts)):
        spec = validator_spec(entry_options(role))
        for node in nodes:
            given = dict((name, value) for name, value in hostvars[node].items() if name in spec)
            given = dict((name, value) for name, value in given.items() if '{{' not in json.dumps(value))
            result = ArgumentSpecValidator(spec).validate(given)
            assert result.error_messages == [], (role, node, result.error_messages)
    environments = hostvars[hosts[0]]['kohakuriver_environments']
    assert 'python-data-science' in [environment['name'] for environment in environments]


def test_the_example_declares_a_vps_ready_environment_and_runner_facts():
    example = load(REPO / 'inventory.example')
    environments = example['all']['vars']['kohakuriver_environments']
    assert [environment['name'] for environment in environments if environment.get('vps')] == ['my-ubuntu-base']
    runners = example['all']['children']['kohakuriver_runners']['hosts']
    assert all('kohakuriver_gpus' in node for node in runners.values())


def test_the_local_inventory_points_at_the_test_bed():
    local = load(REPO / 'inventories' / 'local' / 'hosts.yml')
    children = local['all']['children']
    assert children['kohakuriver_host']['hosts']['host']['kohakuriver_docker_host'] == 'unix:///var/run/docker.sock'
    for name in ('runner1', 'runner2'):
        node = children['kohakuriver_runners']['hosts'][name]
        assert node['kohakuriver_docker_host'] == 'unix:///var/tmp/kohakuriver-testbed/%s/docker.sock' % name
    assert local['all']['vars']['ansible_python_interpreter'] == '{{ ansible_playbook_python }}'
    assert local['all']['vars']['kohakuriver_shared_dir'] == '/var/tmp/kohakuriver-demo/cluster-share'
    shared = children['kohakuriver_host']['hosts']['host']['kohakuriver_host_shared_files'][0]
    assert (REPO / 'inventories' / 'local' / shared['src'].replace('{{ inventory_dir }}/', '')).resolve() == \
        REPO / 'examples' / 'shared_data' / 'analyze.py'


def test_the_presync_agent_installs_an_ansible_core_the_collection_supports():
    floor = load(REPO / 'meta' / 'runtime.yml')['requires_ansible'].lstrip('>=').split('.')
    packages = load(REPO / 'roles' / 'runner' / 'defaults' / 'main.yml')['kohakuriver_runner_presync_packages']
    core = [entry for entry in packages if entry.startswith('ansible-core')]
    assert len(core) == 1
    lowest = core[0].split('>=', 1)[1].split(',', 1)[0].split('.')
    assert [int(part) for part in lowest] + [0] * (3 - len(lowest)) >= [int(part) for part in floor], (core, floor)
    assert entry_options('runner')['kohakuriver_runner_presync_packages']['default'] == packages


def _set_in(tree, found):
    if isinstance(tree, dict):
        for key, value in tree.items():
            found.add(key)
            _set_in(value, found)
    elif isinstance(tree, list):
        for value in tree:
            _set_in(value, found)
    return found


def test_every_variable_the_example_sets_is_read_by_a_role_or_playbook():
    example = load(REPO / 'inventory.example')
    readers = '\n'.join(path.read_text() for folder in ('roles', 'playbooks') for path in (REPO / folder).rglob('*.yml')
                        if path.name != 'argument_specs.yml')
    groups = {'kohakuriver_host', 'kohakuriver_runners'}
    unread = sorted(name for name in _set_in(example, set()) - groups
                    if name.startswith('kohakuriver_') and not re.search(r'\b%s\b' % name, readers))
    assert unread == []
    fields = set(entry_options('environment')['kohakuriver_environments']['options'])
    for environment in example['all']['vars']['kohakuriver_environments']:
        assert set(environment) <= fields, environment['name']


def test_the_example_script_resolves_from_the_collection_wherever_the_inventory_is():
    host = load(REPO / 'inventory.example')['all']['children']['kohakuriver_host']['hosts']
    source = next(iter(host.values()))['kohakuriver_host_shared_files'][0]['src']
    assert source.startswith('{{ playbook_dir }}/')
    assert (REPO / 'playbooks' / source[len('{{ playbook_dir }}/'):]).resolve().is_file()
