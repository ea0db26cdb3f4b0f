"""The tar_create, tar_list and tar_delete playbooks, run for real with ansible-playbook on the test bed's Host."""

from __future__ import annotations

import os

import pytest

from support.ansible_runs import run_playbook
from playbook_support import colliding_inventory, summary
from tarball_support import container_state, environments, sha256_file  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


def tarballs_in(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith('.tar'))


@pytest.fixture
def host_env(testbed, environments, unique_env):
    environments.make(testbed['host']['docker_host'], unique_env)
    return unique_env


def test_tar_create_packages_once_then_reports_no_change(testbed, local_inventory, shared_dir, host_env):
    folder = shared_dir / 'kohakuriver-containers'
    first = run_playbook('kohakuriver.docker.tar_create', local_inventory, extra_vars={'kr_env': host_env})
    assert first.rc == 0, first
    assert first.changed('host') == 1
    made = tarballs_in(folder)
    assert len(made) == 1 and made[0].startswith(host_env + '-')
    assert 'Made %s' % (folder / made[0]) in first.stdout

    again = run_playbook('kohakuriver.docker.tar_create', local_inventory, extra_vars={'kr_env': host_env})
    assert again.rc == 0, again
    assert again.changed('host') == 0 and 'Unchanged since' in again.stdout
    assert tarballs_in(folder) == made
    assert container_state(testbed['host']['docker_host'], host_env)['Running']

    forced = run_playbook('kohakuriver.docker.tar_create', local_inventory,
                          extra_vars={'kr_env': host_env, 'kr_force': True, 'kr_keep': 2})
    assert forced.rc == 0 and forced.changed('host') == 1, forced
    assert len(tarballs_in(folder)) == 2


def test_tar_create_uses_kohakuriver_tarball_dir_when_set(testbed, tmp_path, shared_dir, host_env):
    from support.ansible_runs import write_inventory
    elsewhere = tmp_path / 'elsewhere'
    inventory = write_inventory(tmp_path / 'inventory.json', testbed, shared_dir,
                                extra_vars={'kohakuriver_tarball_dir': str(elsewhere)})
    run = run_playbook('kohakuriver.docker.tar_create', inventory, extra_vars={'kr_env': host_env})
    assert run.rc == 0, run
    assert len(tarballs_in(elsewhere)) == 1 and tarballs_in(shared_dir / 'kohakuriver-containers') == []


def test_tar_create_without_env_says_what_to_give(local_inventory):
    run = run_playbook('kohakuriver.docker.tar_create', local_inventory)
    assert run.rc != 0 and 'Give the environment name, for example -e kr_env=my-python-env' in run.stdout


def test_tar_list_shows_a_table_newest_first(local_inventory, shared_dir, unique_env):
    folder = shared_dir / 'kohakuriver-containers'
    (folder / ('%s-1700000000.tar' % unique_env)).write_bytes(b'x' * 2500000)
    (folder / ('%s-1700000100.tar' % unique_env)).write_bytes(b'x' * 1200000)
    (folder / ('%s-1700000100.tar.json' % unique_env)).write_text(
        '{"format": "kohakuriver.docker/tarball-v1", "sha256": "%s", "image_id": "sha256:%s"}' % ('a' * 64, 'b' * 64))
    (folder / ('.%s-1700000200.tar.1.0123456789ab.partial' % unique_env)).write_bytes(b'partial')

    run = run_playbook('kohakuriver.docker.tar_list', local_inventory)
    assert run.rc == 0 and run.changed() == 0, run
    lines = [line.strip().strip('",') for line in run.stdout.splitlines() if unique_env in line or 'ENVIRONMENT' in line]
    assert lines[0].split() == ['FILE', 'ENVIRONMENT', 'DATE', '(UTC)', 'SIZE', '(MB)', 'VERIFIED']
    assert lines[1].split() == ['%s-1700000100.tar' % unique_env, unique_env, '2023-11-14', '22:15:00', '1.2', 'yes']
    assert lines[2].split() == ['%s-1700000000.tar' % unique_env, unique_env, '2023-11-14', '22:13:20', '2.5', 'no*']
    assert len(lines) == 3

    empty = run_playbook('kohakuriver.docker.tar_list', local_inventory, extra_vars={'kr_env': unique_env + '-none'})
    assert empty.rc == 0 and 'No tarballs in %s.' % folder in empty.stdout


def test_tar_delete_by_file_name_or_by_environment(local_inventory, shared_dir, unique_env):
    folder = shared_dir / 'kohakuriver-containers'
    names = ['%s-1700000000.tar' % unique_env, '%s-1700000100.tar' % unique_env, '%s-2-1700000000.tar' % unique_env]
    for name in names:
        (folder / name).write_bytes(b'tarball')
    (folder / (names[0] + '.json')).write_text('{}')

    one = run_playbook('kohakuriver.docker.tar_delete', local_inventory, extra_vars={'kr_tarball': names[0]})
    assert one.rc == 0 and one.changed('host') == 1, one
    assert sorted(os.listdir(folder)) == sorted(names[1:] + ['.%s.package.lock' % unique_env])

    refused = run_playbook('kohakuriver.docker.tar_delete', local_inventory, extra_vars={'kr_tarball': '../' + names[1]})
    assert refused.rc != 0 and 'without any folder' in refused.stdout

    everything = run_playbook('kohakuriver.docker.tar_delete', local_inventory, extra_vars={'kr_env': unique_env})
    assert everything.rc == 0 and everything.changed('host') == 1, everything
    assert tarballs_in(folder) == [names[2]]
    nothing = run_playbook('kohakuriver.docker.tar_delete', local_inventory, extra_vars={'kr_env': unique_env})
    assert nothing.rc == 0 and nothing.changed('host') == 0 and 'Nothing to delete.' in nothing.stdout


def test_tar_playbooks_say_what_they_would_do_in_check_mode_and_ignore_colliding_inventory_names(
        testbed, tmp_path, shared_dir, host_env):
    inventory = colliding_inventory(tmp_path / 'colliding.json', testbed, shared_dir)
    folder = shared_dir / 'kohakuriver-containers'
    checked = run_playbook('kohakuriver.docker.tar_create', inventory, check=True, extra_vars={'kr_env': host_env})
    assert checked.rc == 0 and checked.changed('host') == 1, checked
    assert summary(checked).startswith('Check mode, nothing was done: would make %s/%s-' % (folder, host_env))
    assert tarballs_in(folder) == []

    started_at = container_state(testbed['host']['docker_host'], host_env)['StartedAt']
    paused = run_playbook('kohakuriver.docker.tar_create', inventory, extra_vars={'kr_env': host_env, 'kr_pause': True})
    assert paused.rc == 0 and summary(paused).startswith('Made %s/%s-' % (folder, host_env)), paused
    assert container_state(testbed['host']['docker_host'], host_env)['StartedAt'] == started_at, 'paused, not stopped'
    made = tarballs_in(folder)

    listed = run_playbook('kohakuriver.docker.tar_list', inventory)
    assert listed.rc == 0 and made[0] in listed.stdout, 'env: production in the inventory is no filter'
    assert made[0] in run_playbook('kohakuriver.docker.tar_list', inventory, extra_vars={'kr_env': host_env}).stdout

    for given in ({'kr_tarball': made[0]}, {'kr_env': host_env}):
        would = run_playbook('kohakuriver.docker.tar_delete', inventory, check=True, extra_vars=given)
        assert would.rc == 0 and would.changed('host') == 1, would
        assert summary(would) == 'Check mode, nothing was done: would delete %s (with sidecars).' % made[0]
        assert tarballs_in(folder) == made
    deleted = run_playbook('kohakuriver.docker.tar_delete', inventory, extra_vars={'kr_env': host_env})
    assert summary(deleted) == 'Deleted %s (with sidecars).' % made[0] and tarballs_in(folder) == []
