"""Every playbook that works on the Host stops with one clear line when the inventory names no Host or two, run for
real with ansible-playbook (no daemon is reached: the check comes before any play on the Host)."""

from __future__ import annotations

import json

import pytest

from support.ansible_runs import run_playbook

pytestmark = pytest.mark.integration


def inventory(path, hosts):
    local = dict(ansible_connection='local')
    path.write_text(json.dumps({'all': {'children': {
        'kohakuriver_host': {'hosts': dict((name, local) for name in hosts)},
        'kohakuriver_runners': {'hosts': {'runner-a': local}}}}}))
    return path


@pytest.mark.parametrize('playbook', ['tar_list', 'container_list', 'site'])
def test_no_host_is_named_as_such(playbook, tmp_path):
    run = run_playbook('kohakuriver.docker.' + playbook, inventory(tmp_path / 'none.json', []))
    assert run.rc != 0
    assert 'The inventory names no Host: put the node that keeps the environment containers' in run.stdout, run


def test_two_hosts_are_named_with_their_names(tmp_path):
    run = run_playbook('kohakuriver.docker.tar_create', inventory(tmp_path / 'two.json', ['host-a', 'host-b']),
                       extra_vars=dict(kr_env='never-packaged'))
    assert run.rc != 0
    assert 'The inventory names 2 Hosts (host-a, host-b) in the group kohakuriver_host: keep exactly one' in run.stdout, run
    assert 'never-packaged' not in run.stdout.split('Check that the group kohakuriver_host holds exactly one host', 1)[1]
