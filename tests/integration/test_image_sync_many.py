"""image_sync with several environments in one run (names, all_tarballs, pins), on every runner engine, checked by the
docker CLI; and the sync playbook built on it (a pinned environment of the inventory, a kr_pin of no synced one)."""

from __future__ import annotations

import os

import pytest

from support.ansible_runs import run_module, run_playbook
from playbook_support import cluster_inventory
from runner_helpers import base_of, factory, image_id_on, remove_env_from, runner, sync_args  # noqa: F401 pylint: disable=unused-import
from tarball_factory import read_sidecar
from tarball_support import docker_cli

pytestmark = pytest.mark.integration


@pytest.fixture
def second_env(runner, unique_env):
    env = unique_env + '-b'
    yield env
    remove_env_from(runner['client'], env)


def version_in_base(runner, env):
    return docker_cli(runner['docker_host'], 'run', '--rm', '--entrypoint', 'cat', 'kohakuriver/%s:base' % env, '/kr-version')


def many(sync_args, **options):
    args = dict(sync_args, **options)
    del args['name']
    return args


def test_all_tarballs_syncs_every_environment_of_the_folder_in_one_run_and_again_changes_nothing(
        runner, factory, sync_args, unique_env, second_env):
    made = dict((env, factory.make(env)) for env in (unique_env, second_env))
    checked = run_module('image_sync', many(sync_args, all_tarballs=True), check=True)
    assert not checked.get('failed') and checked['changed'], checked
    assert [(one['env'], one['action']) for one in checked['results']] == [(unique_env, 'load'), (second_env, 'load')]
    assert base_of(runner, unique_env) is None and base_of(runner, second_env) is None, 'check mode loaded nothing'

    synced = run_module('image_sync', many(sync_args, all_tarballs=True))
    assert not synced.get('failed') and synced['changed'], synced
    for one in synced['results']:
        assert one['action'] == 'load' and one['verified'] and one['tarball'] == made[one['env']], one
        assert base_of(runner, one['env'])['Id'] == image_id_on(runner, read_sidecar(made[one['env']]))
        assert version_in_base(runner, one['env']).startswith('%s-%d-' % (one['env'], read_sidecar(made[one['env']])['timestamp']))

    again = run_module('image_sync', many(sync_args, names=[second_env], all_tarballs=True))
    assert not again.get('failed') and not again['changed'], again
    assert [(one['env'], one['action']) for one in again['results']] == [(second_env, 'none'), (unique_env, 'none')]


def test_an_environment_that_fails_does_not_stop_the_others_and_the_run_names_it(runner, factory, sync_args, unique_env,
                                                                                 second_env):
    older = factory.make(unique_env)
    factory.make(unique_env)
    other = factory.make(second_env)
    failed = run_module('image_sync', many(sync_args, names=[unique_env, second_env, unique_env + '-none'],
                                           pins={unique_env: os.path.basename(older)[:-4] + '9.tar'}))
    assert failed.get('failed'), failed
    assert failed['msg'].startswith('2 of 3 environments failed to sync; %s: pin ' % unique_env), failed['msg']
    assert '%s-none: ' % unique_env in failed['msg'] and '\n' not in failed['msg']
    by_env = dict((one['env'], one) for one in failed['results'])
    assert by_env[second_env]['action'] == 'load' and by_env[second_env]['tarball'] == other
    assert base_of(runner, second_env)['Id'] == image_id_on(runner, read_sidecar(other))
    assert by_env[unique_env]['failed'] and base_of(runner, unique_env) is None, 'the bad pin changed nothing'


def test_pins_take_kept_versions_and_a_pin_of_an_environment_not_synced_is_refused_before_anything_changes(
        runner, factory, sync_args, unique_env, second_env):
    older = factory.make(unique_env)
    factory.make(unique_env)
    factory.make(second_env)
    refused = run_module('image_sync', many(sync_args, names=[second_env], pins={unique_env: os.path.basename(older)}))
    assert refused.get('failed') and refused['msg'] == (
        'pins name %s, which is not synced in this run (synced: %s): pin only environments in names or, with '
        'all_tarballs, with a tarball in tarball_dir.' % (unique_env, second_env)), refused
    assert base_of(runner, second_env) is None

    pinned = run_module('image_sync', many(sync_args, all_tarballs=True, pins={unique_env: read_sidecar(older)['timestamp']}))
    assert not pinned.get('failed'), pinned
    by_env = dict((one['env'], one) for one in pinned['results'])
    assert by_env[unique_env]['tarball'] == older and by_env[unique_env]['pin'] == str(read_sidecar(older)['timestamp'])
    assert version_in_base(runner, unique_env).startswith('%s-%d-' % (unique_env, read_sidecar(older)['timestamp']))

    both = run_module('image_sync', dict(sync_args, names=[unique_env]))
    assert both.get('failed') and 'mutually exclusive: name|names' in both['msg'], both
    neither = run_module('image_sync', many(sync_args))
    assert neither.get('failed') and neither['msg'].startswith('Give name (one environment), or names'), neither


def test_the_sync_playbook_syncs_a_pinned_environment_of_the_inventory_and_refuses_a_kr_pin_of_none_synced(
        testbed, runner, factory, unique_env, second_env, shared_dir, tmp_path):
    older = factory.make(unique_env)
    factory.make(unique_env)
    factory.make(second_env)
    inventory = cluster_inventory(tmp_path, testbed, shared_dir, {
        'kohakuriver_environments': [{'name': unique_env, 'pin': os.path.basename(older)},
                                     {'name': unique_env + '-unmade', 'image': 'busybox'}]})
    nodes = ['-e', 'kr_nodes=' + runner['name']]
    stray = run_playbook('kohakuriver.docker.sync', inventory, args=nodes + ['-e', 'kr_envs=' + second_env,
                                                                             '-e', 'kr_pin=' + os.path.basename(older)])
    assert stray.rc != 0 and 'pins name %s, which is not synced in this run (synced: %s)' % (unique_env, second_env) in stray.stdout, stray
    assert base_of(runner, second_env) is None

    synced = run_playbook('kohakuriver.docker.sync', inventory, args=nodes)
    assert synced.rc == 0 and synced.changed(runner['name']) == 1, synced
    assert version_in_base(runner, unique_env).startswith('%s-%d-' % (unique_env, read_sidecar(older)['timestamp']))
    assert base_of(runner, second_env) is not None and '%s-unmade' % unique_env not in synced.stdout
