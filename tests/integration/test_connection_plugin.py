"""The kohakuriver.docker.env connection plugin: real ansible-playbook runs against environment containers on the Host.

The environments are made with the collection's container module (so they carry our label), a foreign one with the
docker SDK; what the plays did is read back with the docker CLI.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid

import docker
import pytest

from support.ansible_runs import run_module
from container_support import make_foreign, removed_afterwards, ssh_environment
from connection_plugin_support import (
    SocketForwarder, docker_cli, env_inventory, finished, random_file, run_json, sha256_of, start_json, write_playbook,
)

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import container_name

pytestmark = pytest.mark.integration

CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
TRICKY_DEST = "/opt/my app/it's \"quoted\".txt"
TRICKY_CONTENT = 'spaces, \'quotes\' and "double quotes"\n'
BIG_SIZE = 300 * 1024 * 1024
PEAK_RSS_LIMIT_MB = 200


@pytest.fixture(scope='module')
def host(testbed):
    return testbed['host']['docker_host']


@pytest.fixture(scope='module')
def envs(host, host_images):
    """Environments made once for this file: python (debian-python, running), busybox (running), stopped (busybox)."""
    made = dict((kind, 'krtest-%s' % uuid.uuid4().hex[:10]) for kind in ('python', 'busybox', 'stopped', 'foreign'))
    with contextlib.ExitStack() as stack:
        for env in made.values():
            stack.enter_context(removed_afterwards(host, env))
        for kind, image, state in (('python', 'python', 'started'), ('busybox', 'busybox', 'started'),
                                   ('stopped', 'busybox', 'stopped')):
            result = run_module('container', dict(docker_host=host, name=made[kind], image=host_images[image],
                                                  pull='never', state=state))
            assert not result.get('failed'), result
        make_foreign(host, made['foreign'], host_images['busybox'])
        yield made


def in_env(host, env, *argv):
    return docker_cli(host, 'exec', container_name(env), *argv)


def customisation(tmp_path, env):
    """The play of the customisation test: one task per module the issue names, each idempotent."""
    source = tmp_path / "it's a \"source\" file.txt"
    source.write_text(TRICKY_CONTENT)
    template = tmp_path / 'app.conf.j2'
    template.write_text('name = {{ inventory_hostname }}\n')
    pip_env = {'PIP_CERT': '/tmp/kohakuriver-ca.pem', 'PIP_BREAK_SYSTEM_PACKAGES': '1', 'PIP_DEFAULT_TIMEOUT': '60'}
    tasks = [
        {'name': 'file', 'ansible.builtin.file': {'path': '/opt/my app', 'state': 'directory', 'mode': '0750'}},
        {'name': 'copy', 'ansible.builtin.copy': {'src': str(source), 'dest': TRICKY_DEST, 'mode': '0640'}},
        {'name': 'template', 'ansible.builtin.template': {'src': str(template), 'dest': '/etc/app.conf', 'mode': '0644'}},
        {'name': 'lineinfile', 'ansible.builtin.lineinfile': {
            'path': '/etc/profile.d/threads.sh', 'line': 'export THREADS=8', 'create': True, 'mode': '0644'}},
        {'name': 'ca', 'ansible.builtin.copy': {'src': CA_BUNDLE, 'dest': '/tmp/kohakuriver-ca.pem', 'mode': '0644'}},
        {'name': 'pip', 'ansible.builtin.pip': {'name': 'six'}, 'environment': pip_env},
        {'name': 'apt', 'ansible.builtin.apt': {'name': 'tree', 'update_cache': True, 'cache_valid_time': 3600}},
        {'name': 'command', 'ansible.builtin.command': {'cmd': 'touch /opt/command-ran', 'creates': '/opt/command-ran'}},
    ]
    return write_playbook(tmp_path / 'customise.yml', [{'hosts': env, 'gather_facts': False, 'tasks': tasks}])


def test_modules_customise_an_environment_and_a_second_run_changes_nothing(host, envs, tmp_path):
    env = envs['python']
    inventory = env_inventory(tmp_path / 'inventory.json', {env: {}})
    playbook = customisation(tmp_path, env)

    first = run_json(playbook, inventory)
    assert first.rc == 0, first
    results = first.results(env)
    assert all(results[name]['changed'] for name in ('copy', 'template', 'lineinfile', 'file', 'pip', 'apt', 'command')), first
    # Discovery found the image's real interpreter, which exists in the container.
    interpreter = results['file']['ansible_facts']['discovered_interpreter_python']
    assert interpreter == '/usr/bin/python3.11'
    assert in_env(host, env, 'test', '-x', interpreter)[0] == 0

    assert in_env(host, env, 'cat', TRICKY_DEST) == (0, TRICKY_CONTENT)
    assert in_env(host, env, 'stat', '-c', '%a %U', TRICKY_DEST) == (0, '640 root\n')
    assert in_env(host, env, 'cat', '/etc/app.conf') == (0, 'name = %s\n' % env)
    assert in_env(host, env, 'cat', '/etc/profile.d/threads.sh') == (0, 'export THREADS=8\n')
    assert in_env(host, env, 'stat', '-c', '%a %F', '/opt/my app') == (0, '750 directory\n')
    assert in_env(host, env, 'python3', '-c', 'import six; print(six.__name__)') == (0, 'six\n')
    assert in_env(host, env, 'tree', '--version')[0] == 0
    assert in_env(host, env, 'test', '-e', '/opt/command-ran')[0] == 0

    # The second run goes without pipelining (every module is copied in with put_file first): nothing to change.
    again = run_json(playbook, inventory, extra_vars={'ansible_pipelining': False})
    assert again.rc == 0 and again.changed(env) == 0, again


def test_a_large_file_goes_in_and_out_with_flat_controller_memory(host, envs, tmp_path):
    env = envs['python']
    source = tmp_path / "big 'file' \"one\".bin"
    digest = random_file(source, BIG_SIZE)
    fetched = tmp_path / 'fetched back.bin'
    remote = "/tmp/big 'file' \"one\".bin"
    tasks = [
        {'name': 'put', 'ansible.builtin.copy': {'src': str(source), 'dest': remote, 'mode': '0600'}},
        {'name': 'fetch', 'ansible.builtin.fetch': {'src': remote, 'dest': str(fetched), 'flat': True}},
    ]
    playbook = write_playbook(tmp_path / 'big.yml', [{'hosts': env, 'gather_facts': False, 'tasks': tasks}])
    inventory = env_inventory(tmp_path / 'inventory.json', {env: {'ansible_python_interpreter': '/usr/bin/python3'}})
    try:
        run = run_json(playbook, inventory, timed=True)
        assert run.rc == 0, run
        assert in_env(host, env, 'sha256sum', remote)[1].split()[0] == digest
        assert sha256_of(fetched) == digest
        assert not [name for name in os.listdir(tmp_path) if name.endswith('.part')]
        assert run.peak_rss_mb is not None and run.peak_rss_mb < PEAK_RSS_LIMIT_MB, run.peak_rss_mb
    finally:
        in_env(host, env, 'rm', '-f', remote)


def test_an_image_without_python_runs_raw_and_names_the_missing_interpreter(envs, tmp_path):
    env = envs['busybox']
    tasks = [
        {'name': 'raw', 'ansible.builtin.raw': 'echo "it\'s $((40 + 2))"; echo to-stderr >&2'},
        {'name': 'module', 'ansible.builtin.ping': {}, 'ignore_errors': True},
    ]
    playbook = write_playbook(tmp_path / 'busybox.yml', [{'hosts': env, 'gather_facts': False, 'tasks': tasks}])
    run = run_json(playbook, env_inventory(tmp_path / 'inventory.json', {env: {}}))
    assert run.rc == 0, run
    raw, module = run.results(env)['raw'], run.results(env)['module']
    assert raw['rc'] == 0 and raw['stdout'] == "it's 42\n", raw
    assert 'to-stderr' in raw['stderr']
    assert module['failed'] and not module.get('unreachable'), module
    assert module['msg'] == "The module interpreter '/usr/bin/python3' was not found.", module


def refusal_hosts(host, envs):
    return {
        'missing': {'ansible_host': 'krtest-%s' % uuid.uuid4().hex[:10]},
        'stopped': {'ansible_host': envs['stopped']},
        'foreign': {'ansible_host': envs['foreign']},
        'adopted': {'ansible_host': envs['foreign'], 'kohakuriver_env_adopt': True},
        'badname': {'ansible_host': "Bad Name's"},
        'nodaemon': {'ansible_host': envs['busybox'],
                     'kohakuriver_docker_host': 'unix:///var/tmp/kohakuriver-no-such-daemon.sock'},
    }


def test_what_the_connection_refuses_is_one_line_and_nothing_is_started(host, envs, tmp_path):
    hosts = refusal_hosts(host, envs)
    tasks = [{'name': 'raw', 'ansible.builtin.raw': 'echo reached'}]
    playbook = write_playbook(tmp_path / 'refusals.yml', [{'hosts': 'all', 'gather_facts': False, 'tasks': tasks}])
    run = run_json(playbook, env_inventory(tmp_path / 'inventory.json', hosts))
    messages = dict((name, run.results(name)['raw'].get('msg', '')) for name in hosts)
    assert all('\n' not in message for message in messages.values()), messages
    assert 'Environment %s does not exist on %s' % (hosts['missing']['ansible_host'], host) in messages['missing']
    assert 'is created, not running' in messages['stopped'] and 'never starts' in messages['stopped']
    assert 'was not made by kohakuriver.docker' in messages['foreign'] and 'kohakuriver_env_adopt' in messages['foreign']
    assert 'is not a valid environment name' in messages['badname']
    assert 'Cannot reach the Docker daemon at unix:///var/tmp/kohakuriver-no-such-daemon.sock' in messages['nodaemon']
    assert all(run.results(name)['raw'].get('unreachable') for name in hosts if name != 'adopted'), run
    assert run.results('adopted')['raw']['stdout'].strip() == 'reached', run
    assert docker_cli(host, 'inspect', '-f', '{{.State.Status}}', container_name(envs['stopped'])) == (0, 'created\n')


def test_the_sdk_missing_on_the_controller_is_one_line(envs, tmp_path):
    hidden = tmp_path / 'no-sdk' / 'docker'
    hidden.mkdir(parents=True)
    (hidden / '__init__.py').write_text('raise ImportError("No module named docker (hidden by the test)")\n')
    env = envs['busybox']
    playbook = write_playbook(tmp_path / 'raw.yml', [{'hosts': env, 'gather_facts': False,
                                                      'tasks': [{'name': 'raw', 'ansible.builtin.raw': 'true'}]}])
    run = run_json(playbook, env_inventory(tmp_path / 'inventory.json', {env: {}}),
                   env={'PYTHONPATH': str(tmp_path / 'no-sdk')})
    result = run.results(env)['raw']
    assert result.get('unreachable'), run
    assert 'needs the Docker SDK for Python on the controller' in result['msg'] and '\n' not in result['msg']


def test_losing_the_daemon_mid_task_fails_the_host_in_one_line(host, envs, tmp_path):
    env = envs['busybox']
    forwarder = SocketForwarder(tmp_path / 'docker.sock', host[len('unix://'):])
    marker = 'sleep 3%03d' % (uuid.uuid4().int % 1000)
    tasks = [{'name': 'long', 'ansible.builtin.raw': marker}]
    playbook = write_playbook(tmp_path / 'long.yml', [{'hosts': env, 'gather_facts': False, 'tasks': tasks}])
    inventory = env_inventory(tmp_path / 'inventory.json', {env: {'kohakuriver_docker_host': forwarder.docker_host}})
    process = start_json(playbook, inventory)
    try:
        with contextlib.closing(docker.DockerClient(base_url=host, version='auto')) as client:
            for _attempt in range(300):
                if any(marker in ' '.join(row) for row in client.api.top(container_name(env))['Processes']):
                    break
                time.sleep(0.1)
            else:
                pytest.fail('the long command never started: %r' % finished(process))
        forwarder.cut()
        run = finished(process)
    finally:
        forwarder.cut()
        if process.poll() is None:
            process.kill()
    result = run.results(env)['long']
    assert result.get('unreachable'), run
    assert result['msg'].startswith('Task failed: Lost the Docker daemon while a command ran in %s on %s'
                                    % (container_name(env), forwarder.docker_host)), result
    assert '\n' not in result['msg']


def test_an_ssh_host_carries_modules_and_files(testbed, envs, tmp_path):
    env = envs['python']
    source = tmp_path / 'over ssh.txt'
    source.write_text('through paramiko\n')
    tasks = [
        {'name': 'copy', 'ansible.builtin.copy': {'src': str(source), 'dest': '/opt/over ssh.txt', 'mode': '0644'}},
        {'name': 'stat', 'ansible.builtin.stat': {'path': '/opt/over ssh.txt'}},
    ]
    playbook = write_playbook(tmp_path / 'ssh.yml', [{'hosts': env, 'gather_facts': False, 'tasks': tasks}])
    inventory = env_inventory(tmp_path / 'inventory.json', {env: {'kohakuriver_docker_host': testbed['ssh']['docker_host'],
                                                                  'ansible_python_interpreter': '/usr/bin/python3'}})
    # HOME is the test bed's (the SDK reads its known_hosts there); Ansible's own files stay in tmp_path.
    env_vars = dict(ssh_environment(testbed), ANSIBLE_HOME=str(tmp_path / 'ansible'), ANSIBLE_LOCAL_TEMP=str(tmp_path / 'local'))
    run = run_json(playbook, inventory, env=env_vars)
    assert run.rc == 0, run
    assert run.results(env)['stat']['stat']['size'] == len('through paramiko\n')
    assert in_env(testbed['host']['docker_host'], env, 'cat', '/opt/over ssh.txt') == (0, 'through paramiko\n')
