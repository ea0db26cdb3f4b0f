"""Keys as code: the host role makes the Host's signing key (off the share, 0600, never printed), the runner role
writes the runners' allowed-signers file from it; a rotation overlaps two keys, a revocation drops one. Checked with
ssh-keygen itself, the client the modules rely on."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from support.ansible_runs import run_playbook
from roles_support import changed_tasks, failures, role_inventory

pytestmark = pytest.mark.integration

NAMESPACE = 'kohakuriver.docker-sidecar@v1'
PLAYBOOK = '''---
- name: The Host's signing key
  hosts: kohakuriver_host
  gather_facts: false
  tasks:
    - name: Run the signing part of the host role
      ansible.builtin.include_role:
        name: kohakuriver.docker.host
        tasks_from: signing
- name: The runners' allowed signers
  hosts: kohakuriver_runners
  gather_facts: false
  tasks:
    - name: Run the signers part of the runner role
      ansible.builtin.include_role:
        name: kohakuriver.docker.runner
        tasks_from: signers
'''


def public_key(path):
    return ' '.join(open(path).read().split()[:2])


def accepts(allowed, key, tmp_path):
    """Does ssh-keygen -Y verify accept a signature by key (a private key file) under the allowed-signers file?"""
    data = tmp_path / 'data'
    data.write_bytes(b'{"format": "kohakuriver.docker/tarball-v1"}\n')
    subprocess.run(['ssh-keygen', '-Y', 'sign', '-q', '-f', key, '-n', NAMESPACE, str(data)], check=True)
    with open(str(data), 'rb') as stdin:
        done = subprocess.run(['ssh-keygen', '-Y', 'verify', '-f', allowed, '-I', 'kohakuriver-host', '-n', NAMESPACE,
                               '-s', str(data) + '.sig'], stdin=stdin, capture_output=True, check=False)
    os.unlink(str(data) + '.sig')
    return done.returncode == 0


def test_host_key_made_distributed_rotated_with_overlap_and_revoked(testbed, shared_dir, tmp_path):
    key = str(tmp_path / 'host-keys' / 'signing_key')
    playbook = tmp_path / 'signing.yml'
    playbook.write_text(PLAYBOOK)

    def run(**extra):
        variables = dict(kohakuriver_signing_key=key,
                         kohakuriver_allowed_signers=str(tmp_path / 'runners' / '{{ inventory_hostname }}' / 'allowed_signers'))
        variables.update(extra)
        return run_playbook(str(playbook), role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state',
                                                          variables))

    first = run()
    assert first.rc == 0, failures(first)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600 and stat.S_IMODE(os.stat(os.path.dirname(key)).st_mode) == 0o700
    private = open(key).read()
    assert 'PRIVATE KEY' in private and private.splitlines()[1] not in first.stdout + first.stderr
    allowed = [str(tmp_path / 'runners' / node['name'] / 'allowed_signers') for node in testbed['runners']]
    old = public_key(key + '.pub')
    for path in allowed:
        lines = [line for line in open(path).read().splitlines() if not line.startswith('#')]
        assert lines == ['kohakuriver-host namespaces="%s" %s' % (NAMESPACE, old)]
        assert accepts(path, key, tmp_path)

    os.rename(key, key + '.old')  # the old private key, to sign as a tarball of before the rotation is signed

    rotated = run(kohakuriver_host_signing_key_rotate=True, kohakuriver_runner_signing_previous_keys=[old])
    assert rotated.rc == 0, failures(rotated)
    new = public_key(key + '.pub')
    assert new != old
    for path in allowed:  # the overlap: tarballs signed by either key are accepted
        assert accepts(path, key, tmp_path) and accepts(path, key + '.old', tmp_path)

    revoked = run(kohakuriver_runner_signing_previous_keys=[old], kohakuriver_runner_revoked_keys=[old + ' retired'])
    assert revoked.rc == 0 and revoked.changed('host') == 0, changed_tasks(revoked)  # the Host's key is kept as it is
    for path in allowed:
        assert accepts(path, key, tmp_path) and not accepts(path, key + '.old', tmp_path)
        assert old not in open(path).read()


def test_host_role_refuses_a_signing_key_on_the_share(testbed, shared_dir, tmp_path):
    playbook = tmp_path / 'signing.yml'
    playbook.write_text(PLAYBOOK)
    key = shared_dir / 'keys' / 'signing_key'
    done = run_playbook(str(playbook), role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state',
                                                      dict(kohakuriver_signing_key=str(key))))
    assert done.rc != 0 and 'must be an absolute path off the shared storage' in done.stdout, failures(done)
    assert not key.parent.exists()
