"""Run the collection's modules and playbooks as Ansible does, and write test bed inventories for them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from support.collection import BIN, COLLECTION_ROOT, COLLECTIONS_PATH

_RECAP = re.compile(r'^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)'
                    r'\s+failed=(?P<failed>\d+)', re.M)


def run_module(name, args=None, check=False, diff=False, env=None, timeout=600, python_path=()):
    """Run kohakuriver.docker.<name> the way Ansible runs it on a node, and return its result dict.

    python_path: folders searched before the collection and the virtualenv (to hide a library, for instance).
    """
    module_args = dict(args or {})
    module_args['_ansible_check_mode'] = check
    module_args['_ansible_diff'] = diff
    source = COLLECTION_ROOT / 'plugins' / 'modules' / ('%s.py' % name)
    completed = subprocess.run(
        [sys.executable, str(source)], input=json.dumps({'ANSIBLE_MODULE_ARGS': module_args}),
        capture_output=True, text=True, timeout=timeout, check=False,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(list(python_path) + [str(COLLECTIONS_PATH)]), **(env or {})),
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith('{')]
    if not lines:
        raise AssertionError('module %s printed no result (rc %s)\nstdout: %s\nstderr: %s'
                             % (name, completed.returncode, completed.stdout, completed.stderr))
    return json.loads(lines[-1])


def warnings_of(result):
    """The warning texts of a module result (ansible-core 2.19+ returns structured warning summaries)."""
    texts = []
    for warning in result.get('warnings') or []:
        if isinstance(warning, dict):
            warning = (warning.get('event') or {}).get('msg') or warning.get('msg') or str(warning)
        texts.append(warning)
    return texts


class PlaybookRun(object):
    def __init__(self, completed):
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.recap = dict((m.group('host'), dict((k, int(v)) for k, v in m.groupdict().items() if k != 'host'))
                          for m in _RECAP.finditer(completed.stdout))

    def changed(self, host=None):
        return sum(r['changed'] for h, r in self.recap.items() if host in (None, h))

    def __repr__(self):
        return 'PlaybookRun(rc=%s)\n%s\n%s' % (self.rc, self.stdout[-6000:], self.stderr[-3000:])


def run_playbook(playbook, inventory, extra_vars=None, check=False, diff=False, env=None, timeout=1200, args=()):
    """Run ansible-playbook for real; playbook may be a path or a collection playbook name (kohakuriver.docker.x)."""
    command = [str(BIN / 'ansible-playbook'), '-i', str(inventory), str(playbook)]
    if extra_vars:
        command += ['-e', json.dumps(extra_vars)]
    if check:
        command.append('--check')
    if diff:
        command.append('--diff')
    command += list(args)
    # stdin from /dev/null, never inherited: Ansible's workers fail ("Could not detach from stdio") without an fd 0
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL,
                               env=dict(os.environ, ANSIBLE_FORCE_COLOR='0', **(env or {})))
    return PlaybookRun(completed)


def write_inventory(path, testbed, shared_dir, extra_vars=None):
    """A YAML inventory of the test bed in the shape of inventory.example: one Host, the runner nodes, local connections."""
    common = {'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable}
    inventory = {
        'all': {
            'vars': dict({'kohakuriver_shared_dir': str(shared_dir)}, **(extra_vars or {})),
            'children': {
                'kohakuriver_host': {'hosts': {
                    'host': dict(common, kohakuriver_docker_host=testbed['host']['docker_host']),
                }},
                'kohakuriver_runners': {'hosts': dict(
                    (runner['name'], dict(common, kohakuriver_docker_host=runner['docker_host']))
                    for runner in testbed['runners']
                )},
            },
        },
    }
    Path(path).write_text(json.dumps(inventory, indent=2))
    return Path(path)


def start_module(name, args):
    """kohakuriver.docker.<name> as a separate process (as Ansible runs it), to kill it or to run two at once."""
    source = COLLECTION_ROOT / 'plugins' / 'modules' / ('%s.py' % name)
    process = subprocess.Popen([sys.executable, str(source)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(COLLECTIONS_PATH)))
    process.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=False, _ansible_diff=False)}))
    process.stdin.close()
    return process
