"""Environments customised by Ansible tasks through the kohakuriver.docker.env connection: the environment role's
`tasks`/`role`, a play on the hosts of the environments inventory, and the seed's Data Science Environment as a task
file that is packaged, synced and run by a task. Proved with the docker CLI on the committed image."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml

from support.ansible_runs import run_playbook
from support.collection import COLLECTION_ROOT
from roles_support import (  # noqa: F401 pylint: disable=unused-import
    PYTHON, changed_tasks, environments_made, exec_in, failures, role_inventory, sidecar_layers, tarballs, task_block,
)
from task_support import docker_cli

pytestmark = [pytest.mark.integration, pytest.mark.slow]

GREETING_PATH = "/opt/it's here/greeting"
TASKS = [
    {'name': 'Make a folder', 'ansible.builtin.file': {'path': "/opt/it's here", 'state': 'directory', 'mode': '0750'}},
    {'name': 'Greet', 'ansible.builtin.copy': {'dest': GREETING_PATH, 'content': '{{ kr_test_greeting }}\n', 'mode': '0644'}},
    {'name': 'Template a config', 'ansible.builtin.template': {'src': '{{ kr_test_template }}', 'dest': '/etc/krtest.ini', 'mode': '0644'}},
    {'name': 'Run once', 'ansible.builtin.command': {'cmd': 'touch /opt/ran-once', 'creates': '/opt/ran-once'}},
]
ROLE_TASKS = [
    {'name': 'Configure', 'ansible.builtin.lineinfile': {'path': '/etc/krtest.conf', 'line': 'threads = 8', 'create': True, 'mode': '0644'}},
]


def image_run(testbed, env, *command):
    """What `docker run --rm kohakuriver/<env>:base ...` prints on the Host: the committed image, not the container."""
    return docker_cli(testbed['host']['docker_host'], 'run', '--rm', 'kohakuriver/%s:base' % env, *command)


def test_tasks_and_a_role_run_inside_and_only_their_changes_make_a_tarball(testbed, shared_dir, tmp_path, unique_env,
                                                                           environments_made):
    environments_made.append(unique_env)
    (tmp_path / 'customise.yml').write_text(yaml.safe_dump(TASKS, sort_keys=False))
    (tmp_path / 'krtest.ini.j2').write_text('[main]\nenv = {{ inventory_hostname }} -> {{ ansible_host }}\n')
    role = tmp_path / 'roles' / 'krtest_configure' / 'tasks'
    role.mkdir(parents=True)
    (role / 'main.yml').write_text(yaml.safe_dump(ROLE_TASKS, sort_keys=False))
    inventory = role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state',
                               {'kohakuriver_environment_ca_bundle': ''})  # nothing is downloaded
    definition = {'name': unique_env, 'image': PYTHON, 'tasks': str(tmp_path / 'customise.yml'), 'role': 'krtest_configure'}

    def build(greeting, *args):
        extra = {'kohakuriver_environments': [definition], 'kr_test_greeting': greeting,
                 'kr_test_template': str(tmp_path / 'krtest.ini.j2')}
        return run_playbook('kohakuriver.docker.environment', inventory, extra_vars=extra, args=args,
                            env={'ANSIBLE_ROLES_PATH': str(tmp_path / 'roles')})

    first = build('hello')
    assert first.rc == 0, failures(first)
    assert 'changed: [host -> kohakuriver-env-%s]' % unique_env in first.stdout
    made = tarballs(shared_dir, unique_env)
    assert len(made) == 1
    first_layers = sidecar_layers(shared_dir, made[0])
    assert image_run(testbed, unique_env, 'cat', GREETING_PATH, '/etc/krtest.ini', '/etc/krtest.conf') == (
        'hello\n[main]\nenv = host -> %s\nthreads = 8\n' % unique_env)
    assert image_run(testbed, unique_env, 'stat', '-c', '%a', "/opt/it's here", '/opt/ran-once') == '750\n644\n'

    again = build('hello')
    assert again.rc == 0, failures(again)
    assert again.changed('host') == 0, changed_tasks(again)
    assert tarballs(shared_dir, unique_env) == made

    predicted = build('bonjour', '--check', '--diff')
    assert predicted.rc == 0, failures(predicted)
    assert predicted.changed('host') > 0
    assert '-hello\n+bonjour' in predicted.stdout
    assert exec_in(testbed, unique_env, ['cat', GREETING_PATH]) == (0, 'hello\n')
    assert tarballs(shared_dir, unique_env) == made

    changed = build('bonjour')  # the definition is the same: only the task's change makes the tarball
    assert changed.rc == 0, failures(changed)
    assert 'skipping: [host]' in task_block(changed.stdout, 'Record what was applied')[0]  # no step of the definition ran
    remade = tarballs(shared_dir, unique_env)
    assert len(remade) == 1 and remade != made
    assert image_run(testbed, unique_env, 'cat', GREETING_PATH) == 'bonjour\n'
    # layout chain: the change is one delta layer over the previous version's layers, as the Docker CLI sees the image
    new_layers = sidecar_layers(shared_dir, remade[0])
    assert new_layers[:-1] == first_layers and len(new_layers) == len(first_layers) + 1, (first_layers, new_layers)
    inspected = docker_cli(testbed['host']['docker_host'], 'image', 'inspect', '-f', '{{json .RootFS.Layers}}',
                           'kohakuriver/%s:base' % unique_env)
    assert json.loads(inspected) == new_layers


def test_a_play_on_the_inventory_group_customises_and_a_play_on_the_host_packages(testbed, shared_dir, tmp_path,
                                                                                  unique_env, environments_made, module):
    environments_made.append(unique_env)
    made = module('container', {'name': unique_env, 'image': PYTHON, 'state': 'started'})
    assert not made.get('failed'), made
    inventory = role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state')
    plugin = tmp_path / 'kohakuriver_environments.yml'
    plugin.write_text(yaml.safe_dump({
        'plugin': 'kohakuriver.docker.environments', 'hosts': [{'name': 'host', 'docker_host': testbed['host']['docker_host']}],
        'filters': [{'include': "kohakuriver_env == '%s'" % unique_env}, {'exclude': 'true'}],  # this test's alone
    }))
    playbook = COLLECTION_ROOT / 'examples' / 'customise_environments.yml'

    first = run_playbook(playbook, inventory, extra_vars={'customise_motd': 'made here'}, args=('-i', str(plugin)))
    assert first.rc == 0, failures(first)
    assert first.recap[unique_env]['changed'] == 1, first
    assert len(tarballs(shared_dir, unique_env)) == 1
    assert image_run(testbed, unique_env, 'cat', '/etc/motd') == 'made here\n'

    again = run_playbook(playbook, inventory, extra_vars={'customise_motd': 'made here'}, args=('-i', str(plugin)))
    assert again.rc == 0, failures(again)
    assert again.changed() == 0, changed_tasks(again)
    assert len(tarballs(shared_dir, unique_env)) == 1


def test_the_data_science_example_is_packaged_synced_and_runs_a_task(testbed, shared_dir, tmp_path, unique_env,
                                                                     environments_made):
    environments_made.append(unique_env)
    (shared_dir / 'shared_data' / 'analyze.py').write_text((COLLECTION_ROOT / 'examples' / 'shared_data' / 'analyze.py').read_text())
    inventory = role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state')
    definition = {'name': unique_env, 'image': PYTHON, 'tasks': str(COLLECTION_ROOT / 'examples' / 'data_science_environment.yml')}
    # The seed's lists take minutes to install; one system package and numpy (what analyze.py imports) show the same.
    lighter = {'kohakuriver_environments': [definition], 'data_science_system_packages': ['jq'],
               'data_science_python_packages': ['numpy']}
    built = run_playbook('kohakuriver.docker.environment', inventory, extra_vars=lighter)
    assert built.rc == 0, failures(built)
    assert len(tarballs(shared_dir, unique_env)) == 1
    assert image_run(testbed, unique_env, 'jq', '--version').startswith('jq-')
    assert image_run(testbed, unique_env, 'sh', '-c', 'ls /var/lib/apt/lists | grep -c Packages || true') == '0\n'  # cleaned

    ran = run_playbook('kohakuriver.docker.task_submit', inventory, extra_vars={
        'kr_node': 'runner1', 'kr_env': unique_env, 'kr_command': 'python3 /shared/analyze.py && data-science-info'})
    assert ran.rc == 0, failures(ran)
    assert 'fit y = 3.0' in ran.stdout and 'numpy==' in ran.stdout, ran
    loaded = json.loads(docker_cli(testbed['runners'][0]['docker_host'], 'image', 'inspect', 'kohakuriver/%s:base' % unique_env))
    assert loaded[0]['Config']['Labels']['io.kohakuriver.docker.timestamp'] == tarballs(shared_dir, unique_env)[0][len(unique_env) + 1:-4]


def test_a_task_file_that_is_not_there_is_refused_before_anything_runs(testbed, shared_dir, tmp_path, unique_env):
    inventory = role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state')
    missing = {'name': unique_env, 'image': PYTHON, 'tasks': 'no/such/tasks.yml'}
    refused = run_playbook('kohakuriver.docker.environment', inventory, extra_vars={'kohakuriver_environments': [missing]})
    assert refused.rc != 0
    assert 'its tasks file' in refused.stdout and 'is not a file on the controller' in refused.stdout, refused
    listed = subprocess.run(['docker', 'ps', '-aq', '--filter', 'name=kohakuriver-env-%s' % unique_env],
                            capture_output=True, text=True, check=True)
    assert listed.stdout == ''
