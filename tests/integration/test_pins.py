"""Pins and rollbacks (issue 13) on both runner engines: image_sync, task, the sync and rollback playbooks, prune, and
the Host's keep, with the pinned version checked by the docker CLI."""

from __future__ import annotations

import os

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.syncload import prune_superseded
from support.ansible_runs import run_module, run_playbook
from playbook_support import cluster_inventory, summary
from runner_helpers import base_of, factory, has_image, image_id_on, remove_env_from, runner, sync_args  # noqa: F401 pylint: disable=unused-import
from tarball_factory import TarballFactory, read_sidecar
from tarball_support import docker_cli, engine, environments  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


def timestamp_of(path):
    return read_sidecar(path)['timestamp']


def version_in_base(runner, env):
    """/kr-version of kohakuriver/<env>:base, read by the docker CLI; the factory wrote '<env>-<timestamp>-...' there."""
    return docker_cli(runner['docker_host'], 'run', '--rm', '--entrypoint', 'cat', 'kohakuriver/%s:base' % env, '/kr-version')


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def test_a_pin_by_name_loads_a_kept_version_a_pin_by_timestamp_rolls_back_to_a_held_one_in_no_bytes_and_prune_keeps_it(
        runner, factory, sync_args, unique_env, shared_dir):
    older, newer = factory.make(unique_env), factory.make(unique_env)
    older_id, newer_id = image_id_on(runner, read_sidecar(older)), image_id_on(runner, read_sidecar(newer))
    top = read_sidecar(older)['layers'][-1]

    planned = ok(run_module('image_sync', dict(sync_args, pin=os.path.basename(older)), check=True, diff=True))
    assert planned['changed'] and planned['action'] == 'load' and planned['tarball'] == older, planned
    # The runner holds busybox, the bottom layers: only the environment's own layer would go.
    assert planned['layers_to_send'] == [top] and planned['bytes_to_send'] > 0, planned
    # check mode names the image by the sidecar's image_id, its config digest, on either image store
    assert planned['diff']['after'] == dict(image_id=read_sidecar(older)['image_id'], timestamp=timestamp_of(older), layers_to_send=[top],
                                            bytes_to_send=planned['bytes_to_send'])
    assert base_of(runner, unique_env) is None, 'check mode loaded nothing'

    pinned = ok(run_module('image_sync', dict(sync_args, pin=os.path.basename(older))))
    assert pinned['action'] == 'load' and pinned['thin'] and pinned['image_id'] == older_id, pinned
    assert (pinned['bytes_sent'], pinned['layers_to_send']) == (planned['bytes_to_send'], [top]), 'check mode told the truth'
    assert version_in_base(runner, unique_env).startswith('%s-%d-' % (unique_env, timestamp_of(older)))

    newest = ok(run_module('image_sync', sync_args))
    assert newest['action'] == 'load' and newest['image_id'] == newer_id and newest['pin'] is None, newest

    would = ok(run_module('image_sync', dict(sync_args, pin=str(timestamp_of(older))), check=True))
    assert (would['action'], would['layers_to_send'], would['bytes_to_send']) == ('tag', [], 0), would
    back = ok(run_module('image_sync', dict(sync_args, pin=str(timestamp_of(older)))))
    assert back['changed'] and back['action'] == 'tag' and not back['loaded'], back
    assert back['bytes_sent'] == back['bytes_read'] == 0 and back['verified'] and back['image_id'] == older_id
    assert base_of(runner, unique_env)['Id'] == older_id
    assert version_in_base(runner, unique_env).startswith('%s-%d-' % (unique_env, timestamp_of(older)))

    # Prune never removes the pinned version: not a protected timestamp, nor the pinned :base of a pinned sync.
    assert prune_superseded(runner['client'], unique_env, newer_id, protect=(timestamp_of(older),)) == []
    assert has_image(runner, older_id) and has_image(runner, newer_id)
    pruned = ok(run_module('image_sync', dict(sync_args, pin=os.path.basename(newer), prune=True)))
    assert pruned['action'] == 'tag' and [entry['id'] for entry in pruned['pruned']] == [older_id], pruned
    pinned_prune = ok(run_module('image_sync', dict(sync_args, pin=os.path.basename(older), prune=True)))
    assert pinned_prune['action'] == 'load' and [entry['id'] for entry in pinned_prune['pruned']] == [newer_id], pinned_prune
    assert base_of(runner, unique_env)['Id'] == older_id and not has_image(runner, newer_id)

    task = ok(run_module('task', dict(env=unique_env, argv=['cat', '/kr-version'], shared_dir=str(shared_dir),
                                      state_dir=sync_args['state_dir'], docker_host=runner['docker_host'],
                                      pin=str(timestamp_of(older)))))
    assert task['sync']['action'] == 'none' and task['stdout'].startswith('%s-%d-' % (unique_env, timestamp_of(older))), task


def test_a_bad_pin_is_one_line_that_lists_the_kept_tarballs_and_changes_nothing(runner, factory, sync_args, unique_env):
    kept = [os.path.basename(factory.make(unique_env)) for _version in range(2)]
    missing = run_module('image_sync', dict(sync_args, pin='1700000000'))
    assert missing['failed'] and missing['msg'] == 'pin 1700000000 is not a kept tarball of environment %s in %s; kept: %s.' % (
        unique_env, sync_args['tarball_dir'], ', '.join(reversed(kept))), missing
    other = run_module('task', dict(env=unique_env, argv=['true'], state_dir=sync_args['state_dir'], pin='other-1700000000.tar',
                                    tarball_dir=sync_args['tarball_dir'], docker_host=runner['docker_host']))
    assert other['failed'] and 'a tarball of environment other, not of %s' % unique_env in other['msg'], other
    assert '\n' not in missing['msg'] + other['msg'] and base_of(runner, unique_env) is None


def test_keep_never_deletes_a_protected_tarball(docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    args = dict(name=unique_env, tarball_dir=str(folder), docker_host=host, force=True, keep=1)
    first = ok(run_module('tarball', args))['tarball']
    second = ok(run_module('tarball', dict(args, protect=[first['file']])))['tarball']
    predicted = ok(run_module('tarball', dict(args, protect=[str(first['timestamp'])]), check=True, diff=True))
    assert predicted['diff']['after']['tarballs'] == [os.path.basename(predicted['tarball']['path']), first['file']]
    third = ok(run_module('tarball', dict(args, protect=[str(first['timestamp'])])))
    assert sorted(name for name in os.listdir(folder) if name.endswith('.tar')) == [first['file'], third['tarball']['file']]
    assert third['removed'] == [second['path']], third


@pytest.fixture
def cluster(testbed, shared_dir, tmp_path, unique_env):
    """Two versions of unique_env in the shared folder, and the runners' clients; what the test loads is removed."""
    maker = TarballFactory(testbed['host']['docker_host'], shared_dir / 'kohakuriver-containers')
    clients = dict((node['name'], docker.DockerClient(base_url=node['docker_host'], version='auto'))
                   for node in testbed['runners'])
    versions = [maker.make(unique_env), maker.make(unique_env)]

    def inventory(extra=None):
        return cluster_inventory(tmp_path, testbed, shared_dir, extra)
    yield dict(inventory=inventory, versions=versions, clients=clients)
    maker.cleanup()
    for client in clients.values():
        remove_env_from(client, unique_env)
        client.close()


def bases(cluster, env):
    """The versions the runners' :base images are, as the timestamps they are also tagged with (the image IDs differ
    between image stores)."""
    found = set()
    for client in cluster['clients'].values():
        tags = client.api.inspect_image('kohakuriver/%s:base' % env)['RepoTags']
        found.update(int(tag.rsplit(':', 1)[1]) for tag in tags if not tag.endswith(':base'))
    return found


def test_the_rollback_playbook_rolls_every_runner_back_and_an_inventory_pin_keeps_it_there(cluster, unique_env):
    older, newer = cluster['versions']
    older_id, newer_id = timestamp_of(older), timestamp_of(newer)
    inventory = cluster['inventory']()
    assert run_playbook('kohakuriver.docker.sync', inventory, args=['-e', 'kr_envs=' + unique_env]).rc == 0
    assert bases(cluster, unique_env) == {newer_id}

    rolled = run_playbook('kohakuriver.docker.rollback', inventory, args=['-e', 'kr_env=' + unique_env])
    assert rolled.rc == 0 and rolled.changed() == len(cluster['clients']), rolled
    assert bases(cluster, unique_env) == {older_id}
    report = summary(rolled, 'Say what was done, on every runner, in one report')
    assert 'runner1: %s: loaded %s' % (unique_env, os.path.basename(older)) in report, report
    assert 'set pin: %s in its kohakuriver_environments entry' % os.path.basename(older) in report, report

    forward = run_playbook('kohakuriver.docker.rollback', inventory, args=['-e', 'kr_env=' + unique_env, '-e', 'kr_pin=%d' % timestamp_of(newer)])
    assert forward.rc == 0 and bases(cluster, unique_env) == {newer_id}, forward
    assert 'runner2: %s: held, re-tagged as :base: %s (0 bytes sent)' % (unique_env, os.path.basename(newer)) in summary(
        forward, 'Say what was done, on every runner, in one report'), forward

    pinned = cluster['inventory']({'kohakuriver_environments': [{'name': unique_env, 'image': 'busybox', 'pin': os.path.basename(older)}]})
    kept = run_playbook('kohakuriver.docker.sync', pinned)
    assert kept.rc == 0 and bases(cluster, unique_env) == {older_id}, kept
    assert '%s was already here, tagged as :base (pinned, 0 bytes sent)' % os.path.basename(older) in kept.stdout, kept

    refused = run_playbook('kohakuriver.docker.sync', pinned, args=['-e', 'kr_pin=%d' % timestamp_of(newer)])
    assert refused.rc != 0 and 'one timestamp with kr_envs naming one environment' in refused.stdout, refused
