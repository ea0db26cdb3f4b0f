"""A VPS session comes back after a restart of its runner's Docker daemon, as the vps module's documentation says:
the restart policy unless-stopped starts the same container again, its sshd lets the same key in on the same port
with the same host key, and the vps module run again with the same arguments changes nothing.

The daemon restarted is the only runner of a private test bed (private_bed.py), never a daemon of the shared one:
its dockerd gets SIGTERM, as from a service manager, and `testbed.py up` starts what is then missing.
"""

from __future__ import annotations

import contextlib
import time
import uuid

import docker
import pytest

from private_bed import PrivateBed
from support.ansible_runs import run_module
from vps_support import new_key, ssh, vps_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration

COME_BACK_TIMEOUT = 60
BED = PrivateBed('/var/tmp/kr-restart-bed', 'kr-rst-', registry_port=5066, ssh_port=2266)


@pytest.fixture(scope='module')
def private_runner():
    """The private bed's runner (name, docker_host, netns, ...); the whole bed is taken down afterwards."""
    with BED.running() as runner:
        yield runner


@pytest.fixture
def session(private_runner, vps_env):
    """Arguments of the vps module for a fresh session on the private runner; the session is removed afterwards."""
    args = dict(name='rst-%s' % uuid.uuid4().hex[:8], env=vps_env['env'], shared_dir=vps_env['shared_dir'],
                state_dir=vps_env['state_dir'], docker_host=private_runner['docker_host'])
    yield args
    run_module('vps', dict(args, state='absent'))


def inspect_session(runner, name):
    with contextlib.closing(docker.DockerClient(base_url=runner['docker_host'], version='auto', timeout=120)) as client:
        return client.api.inspect_container('kohakuriver-vps-' + name)


def wait_until_running(runner, name):
    deadline = time.monotonic() + COME_BACK_TIMEOUT
    attrs = inspect_session(runner, name)
    while attrs['State']['Status'] != 'running' and time.monotonic() < deadline:
        time.sleep(0.5)
        attrs = inspect_session(runner, name)
    return attrs


def login_until_ok(runner, port, key, host_key):
    deadline = time.monotonic() + COME_BACK_TIMEOUT
    login = ssh(runner, port, key, 'echo back', host_key=host_key)
    while not login['ok'] and time.monotonic() < deadline:
        time.sleep(1)
        login = ssh(runner, port, key, 'echo back', host_key=host_key)
    return login


def test_a_session_comes_back_after_a_restart_of_its_daemon(private_runner, session):
    private, public = new_key()
    made = run_module('vps', dict(session, authorized_keys=[public]))
    assert not made.get('failed') and made['changed'] and made['status'] == 'running', made
    before = inspect_session(private_runner, session['name'])
    assert before['Id'] == made['id'] and before['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped', before
    login = ssh(private_runner, made['port'], private, 'echo before', host_key=made['host_key'])
    assert login['ok'] and login['stdout'] == 'before\n', login

    stopped_dockerd = BED.stop_dockerd(private_runner['name'])
    assert BED.up() == private_runner
    assert BED.dockerd_entry(private_runner['name'])['pid'] != stopped_dockerd['pid']

    after = wait_until_running(private_runner, session['name'])
    assert after['Id'] == before['Id'] and after['State']['Status'] == 'running', after['State']
    assert after['State']['StartedAt'] != before['State']['StartedAt'], 'the container was not restarted'
    login = login_until_ok(private_runner, made['port'], private, made['host_key'])
    assert login['ok'] and login['stdout'] == 'back\n', login

    again = run_module('vps', dict(session, authorized_keys=[public]))
    assert not again.get('failed') and not again['changed'] and again['actions'] == [], again
    assert again['id'] == made['id'] and again['port'] == made['port'] and again['status'] == 'running', again
