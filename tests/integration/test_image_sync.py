"""image_sync on both runner engines (Docker 20.10 and 26) from tarballs the Host made."""

from __future__ import annotations

import fcntl
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import client as kr_client
from ansible_collections.kohakuriver.docker.plugins.module_utils.layers import chain_ids
from ansible_collections.kohakuriver.docker.plugins.module_utils.store import newest_tarball
from ansible_collections.kohakuriver.docker.plugins.module_utils.syncload import load_tarball
from support.ansible_runs import run_module, warnings_of
from runner_helpers import base_of, factory, has_image, image_id_on, remove_env_from, runner, sync_args  # noqa: F401 pylint: disable=unused-import
from tarball_factory import TarballFactory, flip_byte, read_sidecar, truncate, write_sidecar

pytestmark = pytest.mark.integration


def version_of(path):
    """The /kr-version line the factory wrote into the image of this tarball starts with '<env>-<timestamp>-'."""
    return os.path.basename(path)[:-len('.tar')] + '-'


def run_in_base(runner, env, shared_dir):
    """Run a task on the runner's current :base without syncing; return its stdout."""
    result = run_module('task', dict(env=env, argv=['cat', '/kr-version'], shared_dir=str(shared_dir), sync=False,
                                     docker_host=runner['docker_host']))
    assert result.get('rc') == 0, result
    return result['stdout']


def top_layer(sidecar):
    """The sidecar's member entry of the image's top layer (the environment's own)."""
    return [member for member in sidecar['members'] if member['name'] == sidecar['layer_members'][-1]][0]


def test_first_sync_loads_and_tags_then_the_second_is_unchanged_without_reading_the_tarball(
        runner, factory, sync_args, unique_env):
    path = factory.make(unique_env)
    sidecar = read_sidecar(path)
    first = run_module('image_sync', sync_args)
    assert first['changed'] and first['action'] == 'load' and first['loaded'] and first['verified'], first
    assert first['image_id'] == image_id_on(runner, sidecar)
    # The runner holds busybox, the image the environment container was created from: only the top layer goes.
    assert first['thin'] and (first['layers_sent'], first['layers_skipped']) == (1, len(sidecar['layers']) - 1), first
    assert first['bytes_read'] == top_layer(sidecar)['size'] < first['bytes_sent'] < os.path.getsize(path) // 2
    assert first['previous_image_id'] is None
    base = base_of(runner, unique_env)
    assert base['Id'] == image_id_on(runner, sidecar)
    assert sorted(base['RepoTags']) == sorted(['kohakuriver/%s:base' % unique_env,
                                               'kohakuriver/%s:%d' % (unique_env, sidecar['timestamp'])])

    flip_byte(path, top_layer(sidecar)['offset'])  # a sync that read a layer would now fail
    second = run_module('image_sync', sync_args)
    assert not second.get('failed') and not second['changed'] and second['action'] == 'none', second
    assert second['bytes_read'] == second['bytes_sent'] == 0 and not second['loaded'] and second['verified']
    assert second['image_id'] == image_id_on(runner, sidecar) and not second['thin']


def test_a_runner_lacking_every_layer_loads_the_whole_tarball(runner, factory, sync_args, unique_env):
    factory.unique_base(unique_env)
    path = factory.make(unique_env)
    result = run_module('image_sync', sync_args)
    assert result['loaded'] and result['verified'] and not result['thin'], result
    assert result['image_id'] == image_id_on(runner, read_sidecar(path)) == base_of(runner, unique_env)['Id']
    assert result['bytes_read'] == os.path.getsize(path)
    if runner['image_store'] == 'containerd':  # laid out as OCI: without each layer's json and VERSION, with index.json
        assert os.path.getsize(path) - 16384 < result['bytes_sent'] < os.path.getsize(path) + 4096
    else:
        assert os.path.getsize(path) - 2048 < result['bytes_sent'] < os.path.getsize(path) + 2048  # the tags stripped
    assert (result['layers_sent'], result['layers_skipped']) == (len(read_sidecar(path)['layers']), 0)


def hide(path, folder):
    """Move a tarball and its sidecar out of the tarball folder; return a function that puts them back."""
    for name in (path, path + '.json'):
        shutil.move(name, str(folder))

    def restore():
        for name in (path, path + '.json'):
            shutil.move(os.path.join(str(folder), os.path.basename(name)), name)
    return restore


@pytest.mark.parametrize('maker', ['host-legacy', 'runner2-oci'])
def test_an_update_sends_only_the_new_layer_and_gives_the_image_a_full_load_gives(
        runner, testbed, factory, sync_args, unique_env, shared_dir, tmp_path, maker):
    if maker == 'runner2-oci':
        runner2 = [node for node in testbed['runners'] if node['name'] == 'runner2'][0]
        factory = TarballFactory(runner2['docker_host'], shared_dir / 'kohakuriver-containers')
    try:
        factory.shared_base(unique_env, 8 * 1024 * 1024)
        old = factory.make(unique_env)
        new = factory.make(unique_env)
    finally:
        if maker == 'runner2-oci':
            factory.cleanup()  # the runner must load both versions, not find them
    sidecar = read_sidecar(new)
    assert sidecar['archive_format'] == ('oci' if maker == 'runner2-oci' else 'docker-legacy')
    restore = hide(new, tmp_path)
    assert run_module('image_sync', sync_args)['image_id'] == image_id_on(runner, read_sidecar(old))
    restore()

    result = run_module('image_sync', sync_args)
    assert result['loaded'] and result['verified'] and result['thin'], result
    assert (result['layers_sent'], result['layers_skipped']) == (1, len(sidecar['layers']) - 1)
    assert result['bytes_read'] == top_layer(sidecar)['size']
    assert result['bytes_sent'] < top_layer(sidecar)['size'] + 64 * 1024 < os.path.getsize(new) // 100
    # The image ID is the config's digest: the same as the Host's image, which a full load reproduces.
    base = base_of(runner, unique_env)
    assert result['image_id'] == base['Id'] == image_id_on(runner, sidecar)
    assert base['RootFS']['Layers'] == sidecar['layers']
    assert run_in_base(runner, unique_env, shared_dir).startswith(version_of(new))
    assert not run_module('image_sync', sync_args)['changed']


def test_a_changed_byte_in_a_layer_the_thin_archive_sends_fails_and_base_stays(
        runner, factory, sync_args, unique_env, shared_dir):
    good = factory.make(unique_env)
    run_module('image_sync', sync_args)
    bad = factory.make(unique_env, random_bytes=1024 * 1024)
    sidecar = read_sidecar(bad)
    layer = top_layer(sidecar)
    flip_byte(bad, layer['offset'] + layer['size'] // 2)
    result = run_module('image_sync', sync_args)
    assert result.get('failed'), result
    assert bad in result['msg'] and 'sha256 of member %s does not match' % layer['name'] in result['msg'], result['msg']
    assert base_of(runner, unique_env)['Id'] == image_id_on(runner, read_sidecar(good))
    assert not has_image(runner, image_id_on(runner, sidecar))
    assert run_in_base(runner, unique_env, shared_dir).startswith(version_of(good))


def test_a_refused_thin_archive_falls_back_to_the_whole_tarball(runner, factory, unique_env, shared_dir):
    """Told that the runner holds layers it lacks (the big base layer), the daemon refuses the thin archive for real;
    the whole tarball then loads."""
    factory.shared_base(unique_env, 1024 * 1024)
    path = factory.make(unique_env)
    sidecar = read_sidecar(path)
    tarball = newest_tarball(str(shared_dir / 'kohakuriver-containers'), unique_env)
    connected = kr_client.connect(runner['docker_host'], timeout=300)
    try:
        result = load_tarball(connected, unique_env, tarball, tarball.sidecar, held=set(chain_ids(sidecar['layers'][:-1])))
    finally:
        connected.close()
    assert result['loaded'] and result['verified'] and not result['thin'], result
    assert result['bytes_read'] == os.path.getsize(path)
    assert any(warning.startswith('The daemon refused %s' % path) and 'instead of the 1 of %d layers' % len(sidecar['layers'])
               in warning for warning in result['warnings']), result
    assert result['image_id'] == base_of(runner, unique_env)['Id'] == image_id_on(runner, sidecar)


def test_a_newer_tarball_reloads_and_the_previous_image_stays(runner, factory, sync_args, unique_env):
    old = factory.make(unique_env)
    run_module('image_sync', sync_args)
    new = factory.make(unique_env)
    result = run_module('image_sync', sync_args)
    assert result['changed'] and result['loaded'] and result['timestamp'] == read_sidecar(new)['timestamp'], result
    assert result['previous_image_id'] == image_id_on(runner, read_sidecar(old))
    assert base_of(runner, unique_env)['Id'] == image_id_on(runner, read_sidecar(new))
    assert has_image(runner, image_id_on(runner, read_sidecar(old)))
    assert not run_module('image_sync', sync_args)['changed']


def test_the_tarballs_image_already_on_the_runner_is_only_tagged(runner, factory, sync_args, unique_env):
    old = factory.make(unique_env)
    run_module('image_sync', sync_args)
    new = factory.make(unique_env)
    run_module('image_sync', sync_args)
    os.unlink(new)  # the operator withdraws the new version: the folder's newest is the old one again
    os.unlink(new + '.json')
    result = run_module('image_sync', sync_args)
    assert result['changed'] and result['action'] == 'tag' and not result['loaded'] and result['bytes_read'] == 0, result
    assert base_of(runner, unique_env)['Id'] == image_id_on(runner, read_sidecar(old))
    assert not run_module('image_sync', sync_args)['changed']


def test_prune_removes_superseded_images_but_not_one_a_container_uses(runner, factory, sync_args, unique_env):
    first, second, third = [], [], []
    first.append(factory.make(unique_env))
    run_module('image_sync', sync_args)
    in_use = image_id_on(runner, read_sidecar(first[0]))
    runner['client'].api.create_container(in_use, command=['true'], name='%s-user' % unique_env,
                                          labels={'io.kohakuriver.docker.env': unique_env})
    second.append(factory.make(unique_env))
    run_module('image_sync', sync_args)
    third.append(factory.make(unique_env))
    result = run_module('image_sync', dict(sync_args, prune=True))
    assert result['changed'] and result['loaded'], result
    superseded = image_id_on(runner, read_sidecar(second[0]))
    assert [entry['id'] for entry in result['pruned']] == [superseded]
    assert not has_image(runner, superseded)
    assert has_image(runner, in_use)
    assert base_of(runner, unique_env)['Id'] == image_id_on(runner, read_sidecar(third[0]))


def test_prune_keeps_vps_session_snapshots(runner, factory, sync_args, unique_env):
    first = factory.make(unique_env)
    run_module('image_sync', sync_args)
    snapshot = 'kohakuriver/%s:vps-alice-1700000000' % unique_env
    runner['client'].api.tag(image_id_on(runner, read_sidecar(first)), 'kohakuriver/%s' % unique_env, 'vps-alice-1700000000')
    factory.make(unique_env)
    result = run_module('image_sync', dict(sync_args, prune=True))
    assert result['loaded'] and result['pruned'] == [], result
    assert runner['client'].api.inspect_image(snapshot)['Id'] == image_id_on(runner, read_sidecar(first))


def test_eight_concurrent_syncs_load_once_and_all_succeed(runner, factory, sync_args, unique_env):
    factory.make(unique_env, random_bytes=8 * 1024 * 1024)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: run_module('image_sync', sync_args), range(8)))
    assert all(not result.get('failed') for result in results), results
    assert sum(result['loaded'] for result in results) == 1
    assert sum(result['changed'] for result in results) == 1
    assert len(set(result['image_id'] for result in results)) == 1


@pytest.mark.parametrize('damage', ['truncated', 'truncated-unverified', 'member-sha256', 'file-sha256'])
def test_a_bad_tarball_fails_naming_file_and_cause_and_the_previous_base_keeps_running_tasks(
        runner, factory, sync_args, unique_env, shared_dir, damage):
    good = factory.make(unique_env)
    run_module('image_sync', sync_args)
    factory.unique_base(unique_env)  # the runner holds none of its layers: the whole tarball is read and checked
    bad = factory.make(unique_env)
    sidecar = read_sidecar(bad)
    largest = max(sidecar['members'], key=lambda member: member['size'])
    if damage.startswith('truncated'):
        truncate(bad, largest['offset'] + largest['size'] // 2)
        if damage == 'truncated-unverified':
            os.unlink(bad + '.json')
        cause = 'truncated' if damage == 'truncated' else 'unexpected end of data'
    elif damage == 'member-sha256':
        flip_byte(bad, largest['offset'] + largest['size'] // 2)
        cause = 'sha256 of member %s does not match' % largest['name']
    else:  # every member intact, only the whole file's checksum differs: caught after the last byte was read
        write_sidecar(bad, dict(sidecar, sha256='0' * 64))
        cause = 'its sha256 is'
    result = run_module('image_sync', sync_args)
    assert result.get('failed'), result
    assert bad in result['msg'] and cause in result['msg'], result['msg']
    assert base_of(runner, unique_env)['Id'] == image_id_on(runner, read_sidecar(good))
    assert not has_image(runner, image_id_on(runner, sidecar))
    assert not runner['client'].images.list(filters={'dangling': True, 'label': 'io.kohakuriver.docker.timestamp=%d'
                                                     % sidecar['timestamp']})
    assert run_in_base(runner, unique_env, shared_dir).startswith(version_of(good))


def test_a_kohakuriver_tarball_without_sidecar_loads_unverified(runner, factory, sync_args, unique_env):
    path = factory.make(unique_env, kohakuriver_style=True)
    assert not os.path.exists(path + '.json')
    result = run_module('image_sync', sync_args)
    assert result['changed'] and result['loaded'] and not result['verified'] and result['thin'], result
    assert any('unverified' in warning for warning in warnings_of(result))
    timestamp = int(path.rsplit('-', 1)[1][:-len('.tar')])
    base = base_of(runner, unique_env)
    assert 'kohakuriver/%s:%d' % (unique_env, timestamp) in base['RepoTags']
    assert not (base['Config'].get('Labels') or {}).get('io.kohakuriver.docker.timestamp')
    second = run_module('image_sync', sync_args)
    assert not second['changed'] and not second['verified'] and second['bytes_read'] == 0, second


def test_an_oci_layout_tarball_from_docker_26_loads(runner, testbed, shared_dir, sync_args, unique_env):
    runner2 = [node for node in testbed['runners'] if node['name'] == 'runner2'][0]
    maker = TarballFactory(runner2['docker_host'], shared_dir / 'kohakuriver-containers')
    try:
        path = maker.make(unique_env)
    finally:
        maker.cleanup()  # the runner must really load it, not find it
    sidecar = read_sidecar(path)
    assert sidecar['archive_format'] == 'oci'
    result = run_module('image_sync', sync_args)
    assert result['loaded'] and result['verified'] and result['image_id'] == image_id_on(runner, sidecar), result
    assert not run_module('image_sync', sync_args)['changed']


def test_a_local_runner_syncs_without_the_docker_sdk_and_a_debug_run_asks_for_it(
        runner, factory, sync_args, unique_env, tmp_path):
    """A unix:// daemon is inspected, loaded and tagged over the standard library (daemon.py, local_api.py); debug
    (which logs every request the SDK makes), TLS and remote daemons need the SDK, and say so when it is missing."""
    hidden = tmp_path / 'sdk-hidden'
    (hidden / 'docker').mkdir(parents=True)
    (hidden / 'docker' / '__init__.py').write_text("raise ImportError('the Docker SDK is hidden by this test')\n")
    factory.make(unique_env)
    needs_sdk = run_module('image_sync', dict(sync_args, debug=True), python_path=[str(hidden)])
    assert needs_sdk.get('failed') and 'Failed to import the required Python library (docker)' in needs_sdk['msg']
    assert base_of(runner, unique_env) is None
    loaded = run_module('image_sync', sync_args, python_path=[str(hidden)])
    assert loaded['loaded'] and loaded['verified'] and loaded['image_id'] == base_of(runner, unique_env)['Id'], loaded
    current = run_module('image_sync', sync_args, python_path=[str(hidden)])
    assert not current.get('failed') and not current['changed'] and current['action'] == 'none', current
    assert current['verified'] and current['image_id'] == base_of(runner, unique_env)['Id']


def test_no_tarball_and_no_image_fails_clearly(runner, sync_args, unique_env):
    result = run_module('image_sync', sync_args)
    assert result.get('failed')
    assert 'No tarball of environment %s' % unique_env in result['msg'] and 'no local image' in result['msg']
    assert base_of(runner, unique_env) is None


def test_an_unreachable_folder_fails_unless_allow_stale_accepts_the_local_image(runner, factory, sync_args, unique_env,
                                                                                shared_dir):
    missing = dict(sync_args, tarball_dir=str(shared_dir / 'not-mounted'))
    result = run_module('image_sync', missing)
    assert result.get('failed') and 'not-mounted' in result['msg'] and 'allow_stale' in result['msg'], result
    result = run_module('image_sync', dict(missing, allow_stale=True))
    assert result.get('failed') and 'No local image' in result['msg'], result
    factory.make(unique_env)
    loaded = run_module('image_sync', sync_args)
    stale = run_module('image_sync', dict(missing, allow_stale=True))
    assert not stale.get('failed') and not stale['changed'] and stale['stale'], stale
    assert stale['image_id'] == loaded['image_id']
    assert any('not-mounted' in warning for warning in warnings_of(stale))


def test_check_mode_reports_the_load_and_loads_nothing(runner, factory, sync_args, unique_env):
    path = factory.make(unique_env)
    checked = run_module('image_sync', sync_args, check=True)
    assert checked['changed'] and checked['action'] == 'load' and not checked['loaded'], checked
    assert checked['image_id'] == read_sidecar(path)['image_id']  # the config digest, on either image store
    assert base_of(runner, unique_env) is None and not has_image(runner, image_id_on(runner, read_sidecar(path)))
    assert not os.path.exists(sync_args['state_dir'])
    run_module('image_sync', sync_args)
    assert not run_module('image_sync', sync_args, check=True)['changed']


def test_bad_names_fail_before_docker_is_called(sync_args):
    result = run_module('image_sync', dict(sync_args, name='Not/Valid', docker_host='unix:///nonexistent.sock'))
    assert result.get('failed') and 'not a valid environment name' in result['msg']


def test_syncing_one_environment_does_not_wait_for_another(runner, factory, sync_args, unique_env):
    other = unique_env + '-other'
    factory.make(unique_env)
    factory.make(other)
    os.makedirs(sync_args['state_dir'])
    try:
        with open(os.path.join(sync_args['state_dir'], '.%s.sync.lock' % other), 'w') as held:
            fcntl.flock(held, fcntl.LOCK_EX)  # another run is loading `other`, for as long as this test needs
            result = run_module('image_sync', sync_args)
            blocked = run_module('image_sync', dict(sync_args, name=other, lock_timeout=1))
        assert result['loaded'], result
        assert blocked.get('failed') and 'lock' in blocked['msg'] and base_of(runner, other) is None, blocked
    finally:
        remove_env_from(runner['client'], other)


def test_sync_and_task_over_ssh(testbed, shared_dir, tmp_path, unique_env):
    """The Docker SDK's ssh:// transport (paramiko) carries the chunked load stream and the task's attach stream.
    The test bed's sshd reaches the Host engine, which serves as the runner here."""
    host = testbed['host']['docker_host']
    maker = TarballFactory(host, shared_dir / 'kohakuriver-containers')
    client = docker.DockerClient(base_url=host, version='auto')
    ssh = dict(SSH_AUTH_SOCK=testbed['ssh']['agent_socket'], HOME=testbed['ssh']['home'])
    try:
        path = maker.make(unique_env)
        maker.cleanup()  # the image must come back through the load, not stay from the commit
        args = dict(name=unique_env, tarball_dir=str(shared_dir / 'kohakuriver-containers'),
                    docker_host=testbed['ssh']['docker_host'], state_dir=str(tmp_path / 'state'))
        synced = run_module('image_sync', args, env=ssh)
        assert synced.get('loaded') and synced['verified'] and synced['image_id'] == image_id_on(testbed['host'], read_sidecar(path)), synced
        ran = run_module('task', dict(env=unique_env, shared_dir=str(shared_dir), state_dir=args['state_dir'],
                                      docker_host=args['docker_host'], command='cat /kr-version; echo err >&2; exit 4'),
                         env=ssh)
        assert ran['rc'] == 4 and ran['stdout'].startswith(version_of(path)) and ran['stderr'] == 'err\n', ran
        assert not ran['sync']['changed']
    finally:
        remove_env_from(client, unique_env)
        client.close()
