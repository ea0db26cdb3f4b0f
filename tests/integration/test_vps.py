"""VPS sessions on the runner nodes of the test bed, reached over real SSH (paramiko) from inside the runner's network
namespace, where the session's port is published."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import docker
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from conftest import run_module, run_playbook
from roles_support import PYTHON, remove_environment, role_inventory
from runner_helpers import runner_node
from tarball_factory import TarballFactory

pytestmark = pytest.mark.integration

RUNNERS = ['runner1', 'runner2']

# Runs inside the runner's network namespace: one SSH attempt, its outcome as JSON on stdout.
PROBE = r'''
import io, json, sys
import paramiko
args = json.load(sys.stdin)
out = dict(ok=False)
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.RejectPolicy())
if args.get('host_key'):
    key_type, data = args['host_key'].split()[:2]
    client.get_host_keys().add('[127.0.0.1]:%d' % args['port'], key_type, paramiko.PKey.from_type_string(key_type, __import__('base64').b64decode(data)))
else:
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
try:
    transport = paramiko.Transport(('127.0.0.1', args['port']))
    transport.start_client(timeout=10)
    out['host_key'] = '%s %s' % (transport.get_remote_server_key().get_name(), transport.get_remote_server_key().get_base64())
    try:
        transport.auth_none('root')
    except paramiko.BadAuthenticationType as exc:
        out['allowed'] = sorted(exc.allowed_types)
    transport.close()
    key = paramiko.Ed25519Key.from_private_key(io.StringIO(args['key'])) if args.get('key') else None
    client.connect('127.0.0.1', port=args['port'], username='root', pkey=key, password=args.get('password'),
                   look_for_keys=False, allow_agent=False, timeout=10, banner_timeout=10, auth_timeout=10)
    _, stdout, stderr = client.exec_command(args['command'], timeout=30)
    out.update(ok=True, stdout=stdout.read().decode(), stderr=stderr.read().decode(), rc=stdout.channel.recv_exit_status())
except Exception as exc:
    out.update(error='%s: %s' % (type(exc).__name__, exc))
finally:
    client.close()
print(json.dumps(out))
'''


def ssh(node, port, key=None, command='true', password=None, host_key=None):
    """One SSH login to 127.0.0.1:port inside the runner's network namespace; a dict with ok, rc, stdout or error."""
    completed = subprocess.run(
        ['nsenter', '--net=/var/run/netns/%s' % node['netns'], sys.executable, '-c', PROBE],
        input=json.dumps(dict(port=port, key=key, command=command, password=password, host_key=host_key)),
        capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0 and completed.stdout.strip(), completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def new_key(comment='tester'):
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
    return private, '%s %s' % (public, comment)


@pytest.fixture(scope='module')
def vps_env(testbed, tmp_path_factory):
    """An environment made VPS-ready by the environment role (vps: true) on the Host and packaged into a private
    shared folder; removed from every daemon afterwards."""
    env = 'krtest-%s' % uuid.uuid4().hex[:10]
    root = tmp_path_factory.mktemp('vps')
    shared = root / 'cluster-share'
    (shared / 'kohakuriver-containers').mkdir(parents=True)
    (shared / 'shared_data').mkdir()
    inventory = role_inventory(root / 'inventory.json', testbed, shared, root / 'state')
    try:
        built = run_playbook('kohakuriver.docker.environment', inventory,
                             extra_vars={'kohakuriver_environments': [{'name': env, 'image': PYTHON, 'vps': True}]})
        assert built.rc == 0, built
        yield dict(env=env, shared_dir=str(shared), state_dir=str(root / 'state' / 'runner'), inventory=inventory)
    finally:
        remove_environment(testbed, env)


@pytest.fixture(params=RUNNERS)
def node(request, testbed):
    found = dict(runner_node(testbed, request.param))
    found['client'] = docker.DockerClient(base_url=found['docker_host'], version='auto', timeout=120)
    yield found
    found['client'].close()


@pytest.fixture
def session(node, vps_env):
    """Arguments of the vps module for a fresh session on the runner; the session is removed afterwards."""
    name = 's-%s' % uuid.uuid4().hex[:8]
    args = dict(name=name, env=vps_env['env'], shared_dir=vps_env['shared_dir'], state_dir=vps_env['state_dir'],
                docker_host=node['docker_host'])
    yield args
    for container in node['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + name}):
        container.remove(force=True)


def vps(args, **more):
    return run_module('vps', dict(args, **more), diff=True)


def test_a_session_lets_its_key_in_and_nothing_else_and_keeps_files_across_stop_start(node, session):
    private, public = new_key('alice@laptop')
    wrong_private, _wrong_public = new_key()
    made = vps(session, authorized_keys=[public])
    assert not made.get('failed') and made['changed'], made
    assert made['actions'][-2:] == ['create', 'start'] and made['status'] == 'running'
    port, host_key = made['port'], made['host_key']
    assert made['ssh_command'] == 'ssh -p %d root@%s' % (port, made['host'])
    assert made['diff']['before'] == {'state': 'absent'} and made['diff']['after']['state'] == 'started'

    login = ssh(node, port, private, 'id -u; cat /etc/kohakuriver/environment.json >/dev/null && echo env-ok; '
                                     'echo hello > /root/work.txt; ls -ld /shared', host_key=host_key)
    assert login['ok'] and login['rc'] == 0, login
    assert login['stdout'].splitlines()[:2] == ['0', 'env-ok']
    assert login['host_key'] == ' '.join(host_key.split()[:2])
    assert login['allowed'] == ['publickey'], 'only key logins are offered'
    assert not ssh(node, port, wrong_private)['ok']
    refused = ssh(node, port, password='root')
    assert not refused['ok'] and 'Authentication' in refused['error'], refused

    again = vps(session, authorized_keys=[public])
    assert not again['changed'] and again['actions'] == [] and again['port'] == port, again

    stopped = vps(session, state='stopped')
    assert stopped['changed'] and stopped['actions'] == ['stop'] and not stopped['running'], stopped
    assert not vps(session, state='stopped')['changed']
    restarted = vps(session)
    assert restarted['changed'] and restarted['actions'] == ['start'] and restarted['port'] == port, restarted
    kept = ssh(node, port, private, 'cat /root/work.txt', host_key=host_key)
    assert kept['ok'] and kept['stdout'] == 'hello\n', kept

    removed = vps(session, state='absent')
    assert removed['changed'] and removed['actions'] == ['stop', 'remove'] and removed['status'] == 'absent', removed
    assert not node['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + session['name']})
    assert not vps(session, state='absent')['changed']
