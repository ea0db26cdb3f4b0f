"""kohakuriver.docker.tarball and tarball_info against the real engines: Host (20.10), runner1 (20.10), runner2 (26)."""

from __future__ import annotations

import json
import os
import stat
import time

import pytest

from support.ansible_runs import run_module
from tarball_support import (  # noqa: F401 pylint: disable=unused-import
    BUSYBOX, LABEL_TIMESTAMP, LOADER, check_tarball_against_sidecar, container_state, created_second, docker_cli, engine,
    environments, image_reference, images_of, inspect_image, labels_of,
)

pytestmark = pytest.mark.integration


def package(env, folder, docker_host, check=False, diff=False, **options):
    return run_module('tarball', dict(name=env, tarball_dir=str(folder), docker_host=docker_host, **options),
                      check=check, diff=diff)


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def visible(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith('.'))


@pytest.mark.parametrize('engine_name', ['host', 'runner1', 'runner2'])
def test_a_tarball_is_published_whole_and_loads_and_runs_on_the_other_generation(
        docker_hosts, environments, unique_env, shared_dir, engine_name):
    maker = engine(docker_hosts, engine_name)
    loader = engine(docker_hosts, LOADER[engine_name])
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(maker['docker_host'], unique_env)
    marker = environments.exec(maker['docker_host'], unique_env, 'echo made-on-%s > /kr-marker; cat /kr-marker' % engine_name)

    result = ok(package(unique_env, folder, maker['docker_host']))

    timestamp = result['tarball']['timestamp']
    path = str(folder / ('%s-%d.tar' % (unique_env, timestamp)))
    assert result['changed'] and result['tarball']['path'] == path
    assert visible(folder) == [os.path.basename(path), os.path.basename(path) + '.json']
    assert [name for name in os.listdir(folder) if name.startswith('.')] == ['.%s.package.lock' % unique_env]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    sidecar = check_tarball_against_sidecar(path)
    assert sidecar['archive_format'] == ('oci' if maker['engine_version'].startswith('26') else 'docker-legacy')
    assert sidecar['repo_tags'] == [image_reference(unique_env)]
    assert sidecar['engine']['version'] == maker['engine_version']
    assert sidecar['source']['container'] == 'kohakuriver-env-' + unique_env
    assert result['tarball']['sha256'] == sidecar['sha256'] and result['tarball']['size'] == sidecar['size']
    assert result['save']['bytes'] == sidecar['size'] and result['save']['seconds'] > 0
    assert 0 < result['save']['staging_seconds'] < result['save']['seconds']
    assert 0 <= result['save']['flush_seconds'] < result['save']['seconds']
    base = inspect_image(maker['docker_host'], image_reference(unique_env))
    assert base['Id'] == sidecar['image_id'] == result['tarball']['image_id']
    assert base['RootFS']['Layers'] == sidecar['layers']
    assert labels_of(base)[LABEL_TIMESTAMP] == str(timestamp)
    assert created_second(base) >= timestamp
    assert container_state(maker['docker_host'], unique_env)['Running']

    environments.loaded_on(loader['docker_host'], unique_env)
    docker_cli(loader['docker_host'], 'load', '-i', path)
    loaded = inspect_image(loader['docker_host'], image_reference(unique_env))
    assert loaded['Id'] == sidecar['image_id']
    output = docker_cli(loader['docker_host'], 'run', '--rm', '--network', 'none', '--entrypoint', 'cat',
                        image_reference(unique_env), '/kr-marker')
    assert output == marker


def test_unchanged_container_makes_no_tarball_and_is_not_stopped(docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    first = ok(package(unique_env, folder, host))
    started = container_state(host, unique_env)['StartedAt']
    images = images_of(host, unique_env)

    again = ok(package(unique_env, folder, host))
    predicted = ok(package(unique_env, folder, host, check=True))

    assert not again['changed'] and not predicted['changed']
    assert again['tarball'] == first['tarball']
    assert again['save'] is None and again['removed'] == []
    assert visible(folder) == [first['tarball']['file'], first['tarball']['file'] + '.json']
    assert container_state(host, unique_env)['StartedAt'] == started
    assert images_of(host, unique_env) == images


def test_changes_make_a_new_tarball_that_supersedes_the_old_one(docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    environments.exec(host, unique_env, 'echo one > /kr-marker')
    # The flat layout: the container keeps every change since it was created (test_tarball_chain.py: layout chain).
    first = ok(package(unique_env, folder, host, layout='flat'))

    environments.exec(host, unique_env, 'echo two > /kr-marker')
    predicted = ok(package(unique_env, folder, host, check=True, layout='flat'))
    second = ok(package(unique_env, folder, host, layout='flat'))

    # Check mode sees added and deleted paths only; a rewritten file that was already added is found by the real run.
    assert not predicted['changed']
    assert second['changed'] and second['reasons'] == ['the container content changed since %s' % first['tarball']['file']]
    assert second['tarball']['timestamp'] > first['tarball']['timestamp']
    assert second['removed'] == [first['tarball']['path']]
    assert second['removed_images'] == [first['tarball']['image_id']]
    assert inspect_image(host, first['tarball']['image_id']) is None
    assert visible(folder) == [second['tarball']['file'], second['tarball']['file'] + '.json']

    environments.exec(host, unique_env, 'touch /kr-new-file')
    predicted = ok(package(unique_env, folder, host, check=True, diff=True, layout='flat'))
    assert predicted['changed'] and 'added or deleted' in predicted['reasons'][0]
    assert predicted['diff']['before']['tarballs'] == [second['tarball']['file']]
    assert predicted['diff']['after']['tarballs'] == [os.path.basename(predicted['tarball']['path'])]
    assert visible(folder) == [second['tarball']['file'], second['tarball']['file'] + '.json']


def test_quick_forced_packagings_get_increasing_names_never_ahead_of_their_image(
        docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    results = [ok(package(unique_env, folder, host, force=True, keep=3)) for _round in range(3)]
    timestamps = [result['tarball']['timestamp'] for result in results]
    assert timestamps == sorted(set(timestamps))
    assert [result['reasons'] for result in results] == [['force is set']] * 3
    assert visible(folder) == sorted(name for result in results for name in
                                     (result['tarball']['file'], result['tarball']['file'] + '.json'))
    for result in results:
        sidecar = json.loads(open(result['tarball']['path'] + '.json').read())
        from ansible_collections.kohakuriver.docker.plugins.module_utils.times import parse_docker_time
        assert int(parse_docker_time(sidecar['image_created'])) >= result['tarball']['timestamp']
    assert images_of(host, unique_env) == [results[-1]['tarball']['image_id']]


def test_neighbours_and_kohakuriver_tarballs(docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    neighbour = unique_env + '-2'
    theirs = ['%s-1700000000.tar' % neighbour, '%s-1700000000.tar.json' % neighbour,
              '.%s-1700000001.tar.99.0123456789ab.partial' % neighbour]
    for name in theirs:
        (folder / name).write_bytes(b'not ours to touch')
    (folder / ('%s-1700000000.tar' % unique_env)).write_bytes(b'made by KohakuRiver, no sidecar')
    stale = folder / ('.%s-1700000001.tar.99.0123456789ab.partial' % unique_env)
    stale.write_bytes(b'left by a killed run')
    os.utime(stale, (time.time() - 60, time.time() - 60))
    environments.make(host, unique_env)

    result = ok(package(unique_env, folder, host))

    assert result['reasons'] == ['the newest tarball %s-1700000000.tar has no sidecar (made by KohakuRiver?)' % unique_env]
    assert result['removed'] == [str(folder / ('%s-1700000000.tar' % unique_env))]
    assert result['cleaned'] == [str(stale)]
    assert all((folder / name).read_bytes() == b'not ours to touch' for name in theirs)
    listed = ok(run_module('tarball_info', dict(tarball_dir=str(folder))))['tarballs']
    assert [(entry['env'], entry['verified']) for entry in listed] == [(unique_env, True), (neighbour, False)]
    assert listed[1]['problem'] is not None


def test_a_stopped_container_is_committed_as_it_is_and_left_stopped(docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env, running=False)
    ok(package(unique_env, folder, host))
    assert container_state(host, unique_env)['Status'] == 'created'


def test_pause_packages_a_running_container_without_restarting_it(docker_hosts, environments, unique_env, shared_dir):
    runner2 = engine(docker_hosts, 'runner2')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(runner2, unique_env)
    started = container_state(runner2, unique_env)['StartedAt']
    result = ok(package(unique_env, folder, runner2, pause=True))
    assert result['changed']
    state = container_state(runner2, unique_env)
    assert state['Running'] and not state['Paused'] and state['StartedAt'] == started


def test_check_mode_makes_nothing(docker_hosts, environments, unique_env, tmp_path):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = tmp_path / 'not-yet'
    environments.make(host, unique_env)
    started = container_state(host, unique_env)['StartedAt']
    result = ok(package(unique_env, folder, host, check=True, diff=True))
    assert result['changed'] and result['reasons'] == ['there is no tarball of %s yet' % unique_env]
    assert result['diff'] == {'before': {'tarballs': []},
                              'after': {'tarballs': [os.path.basename(result['tarball']['path'])], 'runner_update': result['runner_update']}}
    # A runner without a tarball of it gets the base image's layers and the new one.
    assert result['runner_update']['layers'] == result['runner_update']['layers_sent'] == len(inspect_image(host, BUSYBOX)['RootFS']['Layers']) + 1
    assert not folder.exists()
    assert images_of(host, unique_env) == []
    assert container_state(host, unique_env)['StartedAt'] == started


def test_absent_deletes_one_named_tarball_or_all_of_the_environment(docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    made = [ok(package(unique_env, folder, host, force=True, keep=3))['tarball'] for _round in range(3)]
    neighbour = folder / ('%s-2-1700000000.tar' % unique_env)
    neighbour.write_bytes(b'neighbour')

    predicted = ok(package(unique_env, folder, host, state='absent', tarball=made[0]['file'], check=True))
    assert predicted['changed'] and os.path.exists(made[0]['path'])
    one = ok(package(unique_env, folder, host, state='absent', tarball=made[0]['file']))
    assert one['changed'] and one['removed'] == [made[0]['path']]
    assert not os.path.exists(made[0]['path'] + '.json')
    assert not ok(package(unique_env, folder, host, state='absent', tarball=made[0]['file']))['changed']

    everything = ok(package(unique_env, folder, host, state='absent', diff=True))
    assert sorted(everything['removed']) == sorted(tarball['path'] for tarball in made[1:])
    assert everything['diff']['after'] == {'tarballs': []}
    assert visible(folder) == [neighbour.name]
    assert not ok(package(unique_env, folder, host, state='absent'))['changed']


def test_purge_removes_tarballs_lock_and_committed_images_of_that_environment_only(
        docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    # The flat layout leaves the container on its base image, so no container uses the committed one.
    made = ok(package(unique_env, folder, host, layout='flat'))['tarball']
    committed = inspect_image(host, image_reference(unique_env))['Id']
    environments.make(host, unique_env + '-2')
    neighbour = ok(package(unique_env + '-2', folder, host))['tarball']
    lock = folder / ('.%s.package.lock' % unique_env)
    assert lock.exists()
    misused = package(unique_env, folder, host, state='absent', purge=True, tarball=made['file'])
    assert misused['failed'] and misused['msg'] == 'purge removes everything of the environment; give it without tarball.'
    assert package(unique_env, folder, host, purge=True)['msg'] == 'purge goes with state=absent.'

    predicted = ok(package(unique_env, folder, host, state='absent', purge=True, check=True))
    assert predicted['changed'] and predicted['removed_images'] == [committed] and str(lock) in predicted['cleaned']
    assert os.path.exists(made['path']) and inspect_image(host, image_reference(unique_env)) is not None
    purged = ok(package(unique_env, folder, host, state='absent', purge=True))
    assert purged['removed'] == [made['path']] and purged['removed_images'] == [committed] and purged['kept_images'] == []
    assert not lock.exists() and inspect_image(host, committed) is None
    assert visible(folder) == [neighbour['file'], neighbour['file'] + '.json'], 'the neighbour environment keeps its tarball'
    assert inspect_image(host, image_reference(unique_env + '-2')) is not None
    assert not ok(package(unique_env, folder, host, state='absent', purge=True))['changed']


@pytest.mark.parametrize('tarball, message', [
    ('../{env}-1700000000.tar', 'without any folder'),
    ('/etc/passwd', 'without any folder'),
    ('{env}-2-1700000000.tar', 'belongs to environment {env}-2, not to {env}'),
    ('{env}-1700000000.tar.json', 'is not a tarball file name'),
    ('{env}-outside.tar', 'is not a tarball file name'),
    ('{env}-1700000001.tar', 'is a link pointing out of tarball_dir'),
])
def test_absent_refuses_anything_but_a_tarball_name_in_the_folder(unique_env, shared_dir, tarball, message):
    folder = shared_dir / 'kohakuriver-containers'
    outside = shared_dir / 'precious.tar'
    outside.write_bytes(b'precious')
    (folder / ('%s-1700000001.tar' % unique_env)).symlink_to(outside)
    (folder / ('%s-2-1700000000.tar' % unique_env)).write_bytes(b'neighbour')
    result = run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), state='absent',
                                        tarball=tarball.format(env=unique_env)))
    assert result.get('failed') and message.format(env=unique_env) in result['msg']
    assert outside.read_bytes() == b'precious'
    assert sorted(os.listdir(folder)) == sorted(['%s-1700000001.tar' % unique_env, '%s-2-1700000000.tar' % unique_env])


def test_tarball_info_lists_newest_first_without_temporaries_and_without_a_daemon(unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    for name in ('%s-1700000000.tar', '%s-1700000005.tar', '%s-2-1700000003.tar', '.%s-1700000009.tar.1.0123456789ab.partial',
                 '%s-1700000007.tar.json', '.%s.package.lock', '%s-latest.tar'):
        (folder / (name % unique_env)).write_bytes(b'12345')
    (folder / ('%s-1700000005.tar.json' % unique_env)).write_text(json.dumps(
        {'format': 'kohakuriver.docker/tarball-v1', 'sha256': 'ab' * 32, 'image_id': 'sha256:' + 'c' * 64}))

    everything = ok(run_module('tarball_info', dict(tarball_dir=str(folder)), env={'DOCKER_HOST': 'unix:///nonexistent'}))
    mine = ok(run_module('tarball_info', dict(tarball_dir=str(folder), name=unique_env)))

    assert [entry['file'] for entry in everything['tarballs']] == [
        '%s-1700000005.tar' % unique_env, '%s-2-1700000003.tar' % unique_env, '%s-1700000000.tar' % unique_env]
    assert everything['tarballs'][0] == {
        'env': unique_env, 'timestamp': 1700000005, 'date': '2023-11-14T22:13:25Z', 'file': '%s-1700000005.tar' % unique_env,
        'path': str(folder / ('%s-1700000005.tar' % unique_env)), 'size': 5, 'verified': True, 'sha256': 'ab' * 32,
        'image_id': 'sha256:' + 'c' * 64, 'problem': None}
    assert [entry['verified'] for entry in everything['tarballs']] == [True, False, False]
    assert [entry['file'] for entry in mine['tarballs']] == ['%s-1700000005.tar' % unique_env, '%s-1700000000.tar' % unique_env]
    assert not everything['changed']


def test_tarball_info_on_a_missing_folder_says_so(tmp_path):
    result = run_module('tarball_info', dict(tarball_dir=str(tmp_path / 'nope')))
    assert result['failed'] and result['msg'] == ('Tarball folder %s does not exist; create it or set tarball_dir.'
                                                  % (tmp_path / 'nope'))
