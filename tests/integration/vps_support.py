"""VPS test helpers: a real SSH login from inside a runner's network namespace, fresh ed25519 keys, and the VPS-ready
environment the VPS test files share (fixture vps_env)."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from roles_support import PYTHON, remove_environment, role_inventory
from support.ansible_runs import run_playbook

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
