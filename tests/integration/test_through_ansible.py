"""Every module of the collection, run the way users run it: through Ansible's own execution path.

The other integration tests run a module file directly as a Python script (fast, same logic). These go through
pytest-ansible's ansible_adhoc, which runs each module in-process through a TaskQueueManager: AnsiballZ packaging of
the installed collection (a module_util missing from a payload fails here), the connection (local to the Host, real
SSH to a runner), interpreter discovery. pytest-ansible's one-task play carries neither module_defaults nor check mode,
so one ansible-playbook run covers those.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from ansible.plugins.loader import module_loader

from tarball_support import inspect_image, remove_env_from

REPO = Path(__file__).resolve().parents[2]
COLLECTIONS_PATH = Path(os.environ.get('KR_COLLECTIONS_PATH') or REPO / '.ansible' / 'collections')

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings('ignore:Host management is deprecated:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:AnsibleCollectionFinder has already been configured:UserWarning'),
    pytest.mark.filterwarnings('ignore:This process .* is multi-threaded, use of fork:DeprecationWarning'),
]


def node(docker_host, **variables):
    return dict(variables, kohakuriver_docker_host=docker_host)


@pytest.fixture
def inventory(testbed, tmp_path):
    """The test bed as an inventory: the Host over `local`, the runners over real SSH (the test bed's sshd, which lands
    on this machine, where the runners' sockets are), and `discovered`: runner1 again, with interpreter discovery."""
    ssh = testbed['ssh']
    over_ssh = {'ansible_connection': 'ssh', 'ansible_host': ssh['host'], 'ansible_port': ssh['port'],
                'ansible_user': ssh['user'], 'ansible_ssh_common_args': '-F %s' % ssh['ssh_config']}
    venv = {'ansible_python_interpreter': sys.executable}  # the Python with the Docker SDK
    runner1, runner2 = testbed['runners'][:2]
    # Discovery over this sshd meets the controller's pyenv shims on PATH first (python3.13: "command not found"), which
    # a node would not have: the fallback list keeps it to the system's Python, which has no Docker SDK.
    discovered = dict(over_ssh, ansible_interpreter_python_fallback=['/usr/bin/python3'])
    path = tmp_path / 'inventory.json'
    path.write_text(json.dumps({'all': {'children': {
        'kohakuriver_host': {'hosts': {'host': node(testbed['host']['docker_host'], ansible_connection='local', **venv)}},
        'kohakuriver_runners': {'hosts': {
            'runner1': node(runner1['docker_host'], **dict(over_ssh, **venv)),
            'runner2': node(runner2['docker_host'], **dict(over_ssh, **venv)),
        }},
        'discovery': {'hosts': {'discovered': node(runner1['docker_host'], **discovered)}},
    }}}, indent=1))
    return path


@pytest.fixture
def through_ansible(ansible_adhoc, inventory):
    """run(host, module, **args): the module's result on that inventory host, run by Ansible."""
    hosts = ansible_adhoc(inventory=str(inventory), host_pattern='all')

    def run(host, module, **args):
        with pytest_process_kept():
            return dict(getattr(hosts[host], 'kohakuriver.docker.%s' % module)(**args)[host])
    return run


@contextlib.contextmanager
def pytest_process_kept():
    """Undo what Ansible's TaskQueueManager, run inside this process by pytest-ansible, does to it: it makes stdio
    non-inheritable (a later ansible-playbook would start without fd 0, and its workers fail) and takes SIGTERM/SIGINT."""
    inheritable = [(fd, os.get_inheritable(fd)) for fd in (0, 1, 2)]
    handlers = [(signum, signal.getsignal(signum)) for signum in (signal.SIGTERM, signal.SIGINT)]
    try:
        yield
    finally:
        for fd, was in inheritable:
            os.set_inheritable(fd, was)
        for signum, handler in handlers:
            signal.signal(signum, handler)


def ok(result):
    assert not result.get('failed') and not result.get('unreachable'), json.dumps(result, indent=1)
    return result


PLAYBOOK = '''
- name: module_defaults give each runner its own docker_host; check mode changes nothing
  hosts: kohakuriver_runners
  gather_facts: false
  module_defaults:
    group/kohakuriver.docker.docker:
      docker_host: "{{ kohakuriver_docker_host }}"
  tasks:
    - name: Plan a sync (runner1 has the image already, runner2 not)
      kohakuriver.docker.image_sync:
        name: "{{ kr_env }}"
        tarball_dir: "{{ kr_tarball_dir }}"
        state_dir: "{{ kr_state_dir }}/{{ inventory_hostname }}"
      check_mode: true
      register: planned
    - name: Only runner2 would load
      ansible.builtin.assert:
        that: planned.changed == (inventory_hostname == 'runner2')
        fail_msg: "{{ planned | to_json }}"

- name: Check mode on the Host
  hosts: kohakuriver_host
  gather_facts: false
  module_defaults:
    group/kohakuriver.docker.docker:
      docker_host: "{{ kohakuriver_docker_host }}"
  tasks:
    - name: Plan removing the environment container
      kohakuriver.docker.container:
        name: "{{ kr_env }}"
        state: absent
      check_mode: true
      register: planned
    - name: Look at it afterwards
      kohakuriver.docker.container_info:
        name: "{{ kr_env }}"
      register: listed
    - name: Removal was planned, and the container is still there
      ansible.builtin.assert:
        that: planned.changed and listed.containers | length == 1
        fail_msg: "{{ planned | to_json }} {{ listed | to_json }}"
'''


def test_every_module_runs_through_ansible(through_ansible, playbook, inventory, testbed, host_images, shared_dir,
                                           unique_env, tmp_path):
    env, tarballs, state = unique_env, str(shared_dir / 'kohakuriver-containers'), str(tmp_path / 'state')
    engines = [testbed['host']['docker_host']] + [runner['docker_host'] for runner in testbed['runners'][:2]]
    on_host, on_runner1 = dict(docker_host=engines[0]), dict(docker_host=engines[1])  # ad-hoc runs have no module_defaults
    try:  # the Host, over `local`: an environment container, used and packaged
        made = ok(through_ansible('host', 'container', name=env, image=host_images['busybox'], **on_host))
        assert made['changed'], made
        ran_from = module_loader.find_plugin_with_context('kohakuriver.docker.container').plugin_resolved_path
        assert Path(ran_from).is_relative_to(COLLECTIONS_PATH), 'Ansible ran %s, not the collection under test' % ran_from
        assert ok(through_ansible('host', 'container_exec', name=env, argv=['echo', 'in', env], **on_host))['stdout'] == 'in %s' % env
        assert len(ok(through_ansible('host', 'container_info', name=env, **on_host))['containers']) == 1
        packaged = ok(through_ansible('host', 'tarball', name=env, tarball_dir=tarballs, **on_host))
        assert packaged['changed'], packaged

        # runner1, over SSH: the share read with the node's own Python, the image synced, a task run
        listed = ok(through_ansible('discovered', 'tarball_info', name=env, tarball_dir=tarballs))
        assert listed['ansible_facts']['discovered_interpreter_python'] == '/usr/bin/python3', listed
        assert [found['path'] for found in listed['tarballs']] == [packaged['tarball']['path']], listed

        synced = ok(through_ansible('runner1', 'image_sync', name=env, tarball_dir=tarballs, state_dir=state + '/runner1',
                                    **on_runner1))
        assert synced['changed'], synced
        ran = ok(through_ansible('runner1', 'task', env=env, command='echo from the task', shared_dir=str(shared_dir),
                                 tarball_dir=tarballs, state_dir=state + '/runner1', **on_runner1))
        assert ran['rc'] == 0 and ran['stdout'] == 'from the task\n', ran
        assert ok(through_ansible('host', 'vps_info', env=env, **on_host))['sessions'] == []
        assert not ok(through_ansible('host', 'vps', name=env, state='absent', **on_host))['changed']

        (tmp_path / 'playbook.yml').write_text(PLAYBOOK)  # module_defaults and check mode
        run = playbook(tmp_path / 'playbook.yml', inventory, dict(kr_env=env, kr_tarball_dir=tarballs, kr_state_dir=state))
        assert run.rc == 0 and run.recap['runner2']['failed'] == 0 and run.recap['host']['failed'] == 0, run
        assert inspect_image(testbed['runners'][1]['docker_host'], 'kohakuriver/%s:base' % env) is None

        # and state=absent: the tarballs with what packaging committed, then the container
        removed = ok(through_ansible('host', 'tarball', name=env, tarball_dir=tarballs, state='absent', purge=True, **on_host))
        assert removed['changed'] and not os.listdir(tarballs), removed
        assert ok(through_ansible('host', 'container', name=env, state='absent', **on_host))['changed']
    finally:
        for docker_host in engines:
            remove_env_from(docker_host, env)


def test_a_node_without_the_docker_sdk_is_told_what_to_install(through_ansible):
    result = through_ansible('discovered', 'container_info')
    assert result.get('failed') and 'Failed to import the required Python library (docker)' in result['msg'], result
    assert '/usr/bin/python3' in result['msg'], result
