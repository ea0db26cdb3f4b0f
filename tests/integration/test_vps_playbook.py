"""The vps playbook on the paths its header documents besides the generated key (tested in test_vps.py): the user's own
key, check mode, port, bind address, ssh host, limits, mounts, listing by environment, stop and delete with a
snapshot, on one runner, logging in over real SSH (paramiko) inside the runner's network namespace. The inventory's group
variables are named like the parameters were before kr_ (playbook_support.COLLIDING): they change nothing."""

from __future__ import annotations

import random
import uuid
from pathlib import Path

import docker
import pytest

from support.ansible_runs import run_playbook
from playbook_support import COLLIDING, summary
from roles_support import role_inventory
from runner_helpers import runner_node
from vps_support import new_key, ssh, vps_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


@pytest.fixture
def runner(testbed):
    found = dict(runner_node(testbed, 'runner2'))
    found['client'] = docker.DockerClient(base_url=found['docker_host'], version='auto', timeout=120)
    yield found
    found['client'].close()


@pytest.fixture
def session(runner):
    name = 's-%s' % uuid.uuid4().hex[:8]
    yield name
    for container in runner['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + name}):
        container.remove(force=True)


def vps(inventory, check=False, **extra):
    return run_playbook('kohakuriver.docker.vps', inventory, extra_vars=extra, check=check)


def test_a_session_with_the_users_own_key_on_every_documented_path(testbed, runner, session, vps_env, tmp_path):
    env = vps_env['env']
    inventory = role_inventory(tmp_path / 'inventory.json', testbed, Path(vps_env['shared_dir']), tmp_path / 'state', COLLIDING)
    (Path(vps_env['shared_dir']) / 'shared_data' / 'hello').write_text('from the share\n')
    private, public = new_key('alice@laptop')
    port = random.randint(42000, 42999)
    common = dict(kr_node='runner2', kr_vps=session, kr_key_dir=str(tmp_path / 'keys'))
    wanted = dict(common, kr_env=env, kr_authorized_keys=[public], kr_port=port, kr_bind_address='127.0.0.1',
                  kr_ssh_host='vps.example', kr_cpus=1, kr_memory='256m',
                  kr_mounts=['%s/shared_data:/data' % vps_env['shared_dir']])

    one_key = dict(wanted)
    one_key['kr_authorized_keys'] = public  # a single key may be given as a string
    checked = vps(inventory, check=True, **one_key)
    assert checked.rc == 0 and checked.changed('runner2') == 1, checked
    assert 'would ' in summary(checked, 'Show how to log in') and '(check mode, nothing was done)' in checked.stdout
    assert not runner['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + session})

    made = vps(inventory, **wanted)
    assert made.rc == 0 and made.changed('runner2') == 1, made
    assert 'ssh -p %d root@vps.example' % port in made.stdout and 'New private key' not in made.stdout, made
    assert not (tmp_path / 'keys').exists(), 'no key pair is made when the user gives a key'
    login = ssh(runner, port, private, 'cat /data/hello; nproc')
    assert login['ok'] and login['stdout'].startswith('from the share\n'), login
    attrs = runner['client'].api.inspect_container('kohakuriver-vps-' + session)
    assert attrs['HostConfig']['NanoCpus'] == 10 ** 9 and attrs['HostConfig']['Memory'] == 256 * 1024 ** 2
    assert attrs['HostConfig']['PortBindings']['22/tcp'] == [{'HostIp': '127.0.0.1', 'HostPort': str(port)}]
    assert ssh(runner, port, new_key()[0])['ok'] is False, 'another key is refused'
    again = vps(inventory, **wanted)
    assert again.rc == 0 and again.changed('runner2') == 0, again

    listed = vps(inventory, kr_node='runner2', kr_state='list', kr_env=env)
    assert listed.rc == 0 and session in listed.stdout, listed
    none = vps(inventory, kr_node='runner2', kr_state='list', kr_env='krtest-no-such-env')
    assert none.rc == 0 and 'No VPS sessions on runner2.' in none.stdout, none

    stopped = vps(inventory, **dict(common, kr_state='stopped', kr_snapshot=True, kr_snapshot_keep=1))
    assert stopped.rc == 0 and stopped.changed('runner2') == 1, stopped
    snapshot = summary(stopped, 'Show how to log in').split('Snapshot: ', 1)[1].split()[0]
    assert snapshot.startswith('kohakuriver/%s:vps-%s-' % (env, session)) and runner['client'].images.get(snapshot)

    would = vps(inventory, check=True, **dict(common, kr_state='absent'))
    assert would.rc == 0 and 'would remove (check mode, nothing was done)' in would.stdout, would
    assert runner['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + session})
    deleted = vps(inventory, **dict(common, kr_state='absent', kr_snapshot=True, kr_snapshot_keep=1))
    assert deleted.rc == 0 and 'is removed.' in deleted.stdout, deleted
    last = summary(deleted, 'Show how to log in').split('Snapshot: ', 1)[1].split()[0]
    assert last != snapshot and runner['client'].images.get(last)
    with pytest.raises(docker.errors.ImageNotFound):
        runner['client'].images.get(snapshot)
    assert not runner['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + session})
    gone = vps(inventory, **dict(common, kr_state='absent'))
    assert gone.rc == 0 and gone.changed('runner2') == 0 and 'does not exist; nothing to do.' in gone.stdout, gone
