"""The host and runner roles, run with the host.yml and runner.yml playbooks against the test bed.

This machine has no systemd as PID 1: the pre-sync runs through the cron path for real (the job's command is run as
cron would run it), and the systemd units are rendered and checked with systemd-analyze verify.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import stat
import subprocess
import uuid

import docker
import pytest

from support.ansible_runs import run_playbook
from reaper_races import claimed, still_running, unless_preempted
from registry_support import docker_cli, docker_login, registries, secure_api  # noqa: F401 pylint: disable=unused-import
from registry_sync_support import on_runner, versions  # noqa: F401 pylint: disable=unused-import
from roles_support import changed_tasks, role_inventory
from runner_helpers import factory  # noqa: F401 pylint: disable=unused-import
from task_support import ModuleProcess, container_states, read
from test_connection_tls import pki, proxy, runner1  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def inventory_with(testbed, shared_dir, tmp_path):
    def make(**extra_vars):
        return role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state', extra_vars)
    return make


@pytest.fixture(scope='module')
def agent_venv(tmp_path_factory):
    """One pre-sync agent venv (ansible-core and the Docker SDK, installed by the role) for the tests of this module."""
    return tmp_path_factory.mktemp('agent') / 'venv'


def test_host_role_makes_a_safe_tarball_folder_and_places_shared_files(testbed, inventory_with, shared_dir, tmp_path):
    script = tmp_path / 'analyze.py'
    script.write_text('print("hello")\n')
    tarball_dir = shared_dir / 'fresh' / 'kohakuriver-containers'
    inventory = inventory_with(kohakuriver_tarball_dir=str(tarball_dir), kohakuriver_host_shared_files=[
        {'dest': 'analyze.py', 'src': str(script)},
        {'dest': 'jobs/readme.txt', 'content': 'inputs go here\n', 'mode': '0640'},
    ])
    first = run_playbook('kohakuriver.docker.host', inventory)
    assert first.rc == 0, first
    assert 'Docker Engine %s' % testbed['host']['engine_version'] in first.stdout
    assert tarball_dir.is_dir() and mode_of(tarball_dir) == 0o755 and os.stat(tarball_dir).st_uid == 0
    assert (shared_dir / 'shared_data' / 'analyze.py').read_text() == 'print("hello")\n'
    assert mode_of(shared_dir / 'shared_data' / 'jobs' / 'readme.txt') == 0o640

    os.chmod(tarball_dir, 0o777)
    fixed = run_playbook('kohakuriver.docker.host', inventory)
    assert fixed.rc == 0 and fixed.changed('host') == 1, fixed
    assert mode_of(tarball_dir) == 0o755
    again = run_playbook('kohakuriver.docker.host', inventory)
    assert again.rc == 0 and again.changed('host') == 0, again


def test_host_role_refuses_a_world_writable_tarball_folder(inventory_with, shared_dir):
    run = run_playbook('kohakuriver.docker.host', inventory_with(kohakuriver_host_tarball_dir_mode='0777'))
    assert run.rc != 0 and 'that others cannot write to' in run.stdout
    assert mode_of(shared_dir / 'kohakuriver-containers') != 0o777


def test_host_role_refuses_shared_files_outside_shared_data(inventory_with, shared_dir):
    run = run_playbook('kohakuriver.docker.host', inventory_with(
        kohakuriver_host_shared_files=[{'dest': '../escape.txt', 'content': 'x'}]))
    assert run.rc != 0 and 'give a relative dest inside shared_data' in run.stdout
    assert not (shared_dir / 'escape.txt').exists()


def test_host_role_without_a_daemon_says_what_to_do_and_starts_nothing(inventory_with, tmp_path):
    socket_path = tmp_path / 'no-daemon' / 'docker.sock'
    run = run_playbook('kohakuriver.docker.host', inventory_with(),
                       args=('-e', 'kohakuriver_docker_host=unix://%s' % socket_path))
    assert run.rc != 0
    assert 'The Docker SDK cannot reach the daemon at unix://%s' % socket_path in run.stdout
    assert 'Start Docker or fix kohakuriver_docker_host' in run.stdout


def test_host_role_reaches_a_tls_daemon_with_the_connection_options_of_module_defaults(
        inventory_with, tmp_path, proxy, pki, runner1):
    playbook = tmp_path / 'host-over-tls.yml'
    playbook.write_text(json.dumps([{
        'name': 'The Host over mutual TLS', 'hosts': 'kohakuriver_host', 'gather_facts': False,
        'module_defaults': {'group/kohakuriver.docker.docker': {
            'tls': True, 'validate_certs': True, 'ca_path': pki['ca'], 'client_cert': pki['client_cert'],
            'client_key': pki['client_key']}},
        'roles': [{'role': 'kohakuriver.docker.host'}]}]))
    inventory = inventory_with()
    over_tls = run_playbook(playbook, inventory, args=('-e', 'kohakuriver_docker_host=%s' % proxy.address))
    assert over_tls.rc == 0 and 'Docker Engine %s' % runner1['engine_version'] in over_tls.stdout, over_tls
    plain = run_playbook('kohakuriver.docker.host', inventory, args=('-e', 'kohakuriver_docker_host=%s' % proxy.address))
    assert plain.rc != 0 and 'The Docker SDK cannot reach the daemon at %s' % proxy.address in plain.stdout, plain


def test_runner_role_prepares_each_runner_and_is_idempotent(testbed, inventory_with, tmp_path):
    inventory = inventory_with()
    first = run_playbook('kohakuriver.docker.runner', inventory)
    assert first.rc == 0, first
    for runner in testbed['runners']:
        assert 'Docker Engine %s' % runner['engine_version'] in first.stdout
        assert mode_of(tmp_path / 'state' / runner['name']) == 0o750
    again = run_playbook('kohakuriver.docker.runner', inventory)
    assert again.rc == 0 and again.changed() == 0, again


def test_runner_role_stops_on_missing_shared_storage(inventory_with, tmp_path):
    missing = tmp_path / 'not-mounted'
    run = run_playbook('kohakuriver.docker.runner', inventory_with(kohakuriver_shared_dir=str(missing)),
                       args=('--limit', 'runner1'))
    assert run.rc != 0
    assert '%s/kohakuriver-containers is missing on runner1: mount the shared storage at %s' % (missing, missing) in run.stdout


def mount_point_of(path):
    """The longest mount point holding path, from the kernel's mount table."""
    with open('/proc/self/mounts') as table:
        points = [line.split()[1].replace('\\040', ' ') for line in table]
    path = os.path.realpath(str(path)).rstrip('/') + '/'
    return max((point for point in points if path.startswith(point.rstrip('/') + '/')), key=len)


def test_runner_role_requires_the_shared_storage_to_be_a_mount(inventory_with, shared_dir):
    run = run_playbook('kohakuriver.docker.runner', inventory_with(kohakuriver_runner_require_mount=True),
                       args=('--limit', 'runner1'))
    mount = mount_point_of(shared_dir)
    if mount == '/':
        assert run.rc != 0
        assert 'lies on the root file system, so the shared storage is not mounted there' in run.stdout
    else:
        assert run.rc == 0, run


def presync_vars(tmp_path, agent_venv, unique_env, scheduler):
    return dict(
        kohakuriver_runner_presync_envs=[unique_env],
        kohakuriver_runner_presync_scheduler=scheduler,
        kohakuriver_runner_venv=str(agent_venv),
        kohakuriver_runner_agent_dir=str(tmp_path / 'agent'),
        kohakuriver_runner_cron_file=str(tmp_path / 'cron.d' / 'kohakuriver-docker-presync'),
        kohakuriver_runner_systemd_dir=str(tmp_path / 'systemd'),
        kohakuriver_runner_install_cron=False,
    )


def cron_command(cron_file):
    """The command of the pre-sync job in a cron file the role wrote."""
    job = [line for line in cron_file.read_text().splitlines() if line and not line.startswith(('#', 'SHELL=', 'PATH='))]
    assert len(job) == 1 and ' root ' in job[0], job
    return job[0].split(' root ', 1)[1]


def run_as_cron(command, state_dir):
    """Run the job's command as cron would: /bin/sh, cron's PATH, no Ansible variables of this test run; the exit
    status and the agent's log."""
    environment = {'PATH': '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME': '/root'}
    done = subprocess.run(['/bin/sh', '-c', command], env=environment, timeout=600, check=False)
    return done.returncode, (state_dir / 'presync.log').read_text()


@pytest.mark.slow
def test_presync_through_cron_loads_the_newest_tarball_and_reaps_orphaned_tasks(testbed, inventory_with, factory, tmp_path,
                                                                                agent_venv, unique_env, shared_dir):
    runner1 = [node for node in testbed['runners'] if node['name'] == 'runner1'][0]
    tarball = factory.make(unique_env)
    (tmp_path / 'cron.d').mkdir()
    settings = presync_vars(tmp_path, agent_venv, unique_env, 'cron')
    inventory = inventory_with(**settings)
    client = docker.DockerClient(base_url=runner1['docker_host'], version='auto', timeout=120)
    try:
        first = run_playbook('kohakuriver.docker.runner', inventory, args=('--limit', 'runner1'))
        assert first.rc == 0, first
        cron_file = tmp_path / 'cron.d' / 'kohakuriver-docker-presync'
        wrapper = tmp_path / 'agent' / 'presync'
        state_dir = tmp_path / 'state' / 'runner1'
        job = [line for line in cron_file.read_text().splitlines() if line and not line.startswith(('#', 'SHELL=', 'PATH='))]
        assert job == ['*/15 * * * * root %s >%s/presync.log 2>&1' % (wrapper, state_dir)]
        assert 'No cron daemon on runner1' in first.stdout or shutil.which('cron') or shutil.which('crond')
        assert mode_of(wrapper) == 0o755 and not (tmp_path / 'systemd' / 'kohakuriver-docker-presync.timer').exists()

        command = cron_command(cron_file)
        returncode, log = run_as_cron(command, state_dir)
        assert returncode == 0, log
        loaded = client.api.inspect_image('kohakuriver/%s:base' % unique_env)
        assert loaded['Config']['Labels']['io.kohakuriver.docker.timestamp'] == tarball.rsplit('-', 1)[1][:-4]
        assert 'ok=2' in log and 'failed=0' in log

        # A task whose module process is killed mid-task leaves its container; the next pre-sync removes it.
        def scenario(attempt):
            task_id = '%s-orphan%d' % (unique_env, attempt)
            orphan = ModuleProcess(dict(env=unique_env, shared_dir=str(shared_dir), sync=False, task_id=task_id,
                                        docker_host=runner1['docker_host'], command='echo started; sleep 600'))
            orphan.wait_for_output('started\n')
            orphan.kill()
            still_running(runner1['docker_host'], task_id)
            returncode, log = run_as_cron(command, state_dir)
            assert returncode == 0, log
            reported = re.search(r'Removed \d+ orphaned task container', log) and 'kohakuriver-task-' + task_id in log
            claimed(reported, runner1['docker_host'], task_id, log)
            assert 'ok=2' in log and 'changed=1' in log and 'failed=0' in log, log
            assert container_states(runner1['docker_host'], task_id) == {}
            assert read(orphan.stdout_log) == 'started\n'
        unless_preempted(scenario)

        again = run_playbook('kohakuriver.docker.runner', inventory, args=('--limit', 'runner1'))
        assert again.rc == 0 and again.changed() == 0, changed_tasks(again)

        settings['kohakuriver_runner_presync_envs'] = []
        removed = run_playbook('kohakuriver.docker.runner', inventory_with(**settings), args=('--limit', 'runner1'))
        assert removed.rc == 0, removed
        assert not cron_file.exists() and not wrapper.exists() and not (tmp_path / 'agent' / 'collections').exists()
    finally:
        for container in client.containers.list(all=True, filters={'label': 'io.kohakuriver.docker.env=%s' % unique_env}):
            container.remove(force=True)
        for image in client.images.list(name='kohakuriver/%s' % unique_env):
            client.images.remove(image.id, force=True)
        client.close()


@pytest.mark.slow
@pytest.mark.parametrize('on_runner', ['runner1'], indirect=True)
def test_presync_pulls_from_the_secure_registry_and_keeps_its_password_private(
        on_runner, versions, registries, inventory_with, tmp_path, agent_venv):  # pylint: disable=redefined-outer-name
    """A registry-only runner (an empty tarball folder, source registry): the agent pulls the latest digest of the secure
    registry with the inventory's credentials and CA, tags it :base, then finds it up to date; the password stays in
    a presync.json only root reads and never reaches a log."""
    secure = registries['secure']
    path = 'krtest-agent-%s/%s' % (uuid.uuid4().hex[:8], versions.env)
    reference = '%s/%s:latest' % (secure['url'], path)
    (tmp_path / 'cron.d').mkdir()
    (tmp_path / 'registry-only').mkdir()
    settings = presync_vars(tmp_path, agent_venv, versions.env, 'cron')
    settings.update(kohakuriver_tarball_dir=str(tmp_path / 'registry-only'), kohakuriver_registry_source='registry',
                    kohakuriver_registry=dict(url=secure['url'], namespace=path.split('/')[0], username=secure['username'],
                                              password=secure['password'], ca_path=secure['ca']))
    api = secure_api(registries)
    pulled = None
    with docker_login(versions.host, secure) as config:
        docker_cli(versions.host, 'tag', versions.v2['image_id'], reference)
        try:
            docker_cli(versions.host, 'push', reference, config=config)
            pulled = '%s/%s@%s' % (secure['url'], path, api.digest(path, 'latest'))
            installed = run_playbook('kohakuriver.docker.runner', inventory_with(**settings), args=('--limit', 'runner1'))
            assert installed.rc == 0 and secure['password'] not in installed.stdout, installed
            assert mode_of(tmp_path / 'agent' / 'presync.json') == 0o600

            command = cron_command(tmp_path / 'cron.d' / 'kohakuriver-docker-presync')
            # The recap's counts also hold the orphan reaping, which may find another test's task on this runner.
            returncode, log = run_as_cron(command, tmp_path / 'state' / 'runner1')
            assert returncode == 0 and 'changed: [localhost] => (item=%s)' % versions.env in log and 'failed=0' in log, log
            base = on_runner['client'].api.inspect_image('kohakuriver/%s:base' % versions.env)
            assert base['Id'] == versions.expected_id(on_runner, versions.v2) and pulled in base['RepoDigests'], base
            returncode, log = run_as_cron(command, tmp_path / 'state' / 'runner1')
            assert returncode == 0 and 'ok: [localhost] => (item=%s)' % versions.env in log and 'failed=0' in log, log
            assert secure['password'] not in log
        finally:
            with contextlib.suppress(Exception):
                api.delete(path)
            docker_cli(versions.host, 'rmi', reference, check=False)
            if pulled:
                docker_cli(on_runner['docker_host'], 'rmi', '-f', pulled, check=False)


@pytest.mark.slow
def test_presync_systemd_units_are_valid(testbed, inventory_with, tmp_path, agent_venv, unique_env):
    (tmp_path / 'systemd').mkdir()
    inventory = inventory_with(**presync_vars(tmp_path, agent_venv, unique_env, 'systemd'))
    run = run_playbook('kohakuriver.docker.runner', inventory, args=('--limit', 'runner1'))
    assert run.rc == 0, run
    service = tmp_path / 'systemd' / 'kohakuriver-docker-presync.service'
    timer = tmp_path / 'systemd' / 'kohakuriver-docker-presync.timer'
    assert 'ExecStart=%s' % (tmp_path / 'agent' / 'presync') in service.read_text().splitlines()
    assert 'Type=oneshot' in service.read_text().splitlines()
    assert 'RequiresMountsFor=%s %s' % (tmp_path / 'cluster-share', tmp_path / 'state' / 'runner1') in service.read_text()
    assert 'OnUnitActiveSec=15min' in timer.read_text().splitlines()
    assert 'Unit=kohakuriver-docker-presync.service' in timer.read_text().splitlines()
    assert not (tmp_path / 'cron.d' / 'kohakuriver-docker-presync').exists()
    if shutil.which('systemd-analyze') is None:
        pytest.skip('systemd-analyze is not installed; the unit contents were checked above')
    verified = subprocess.run(['systemd-analyze', 'verify', str(service), str(timer)], capture_output=True, text=True,
                              check=False)
    assert verified.returncode == 0 and verified.stdout + verified.stderr == '', verified.stdout + verified.stderr
