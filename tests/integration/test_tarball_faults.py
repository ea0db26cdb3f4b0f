"""Faults while packaging: nothing published half-made, the previous tarball intact, the container running."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time

import docker
import pytest

from support.ansible_runs import run_module, start_module
from dockerd_support import throwaway_dockerd
from tarball_support import (  # noqa: F401 pylint: disable=unused-import
    BUSYBOX, IDLE, LABEL_ENV, LABEL_MANAGED, PYTHON, check_tarball_against_sidecar, container_name, container_state,
    created_second, docker_cli, engine, ensure_image, environments, image_reference, inspect_image, sha256_file,
)

pytestmark = pytest.mark.integration


def result_of(process, timeout=600):
    stdout = process.stdout.read()
    process.wait(timeout)
    lines = [line for line in stdout.splitlines() if line.startswith('{')]
    assert lines, 'module printed no result (rc %s): %s %s' % (process.returncode, stdout, process.stderr.read())
    return json.loads(lines[-1])


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def temporaries(folder):
    return sorted(name for name in os.listdir(folder) if name.endswith('.partial'))


def visible(folder):
    return sorted(name for name in os.listdir(folder) if not name.startswith('.'))


def wait_for_temporary(folder, at_least, process, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in temporaries(folder):
            with contextlib.suppress(FileNotFoundError):
                if os.path.getsize(os.path.join(folder, name)) >= at_least:
                    return name
        assert process.poll() is None, 'the packaging ended before it wrote %d bytes' % at_least
        time.sleep(0.02)
    pytest.fail('no temporary file of %d bytes after %d s' % (at_least, timeout))


def inspect_container_image(host, env):
    with contextlib.closing(docker.DockerClient(base_url=host, version='auto')) as api:
        return api.api.inspect_container(container_name(env))['Image']


def assert_intact(previous):
    """The previous tarball is still there and matches its sidecar byte for byte."""
    assert sha256_file(previous['path']) == previous['sha256']
    check_tarball_against_sidecar(previous['path'])


@pytest.fixture
def host(docker_hosts):
    return engine(docker_hosts, 'host')['docker_host']


def test_sigkill_while_saving_publishes_nothing_and_the_next_run_cleans_up(host, environments, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env, image=PYTHON, payload_mb=160)
    previous = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host)))['tarball']
    environments.exec(host, unique_env, 'echo changed > /kr-marker')

    process = start_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host))
    temporary = wait_for_temporary(str(folder), 32 << 20, process)
    process.send_signal(signal.SIGKILL)
    process.wait(30)

    assert visible(folder) == [previous['file'], previous['file'] + '.json']
    assert temporaries(folder) == [temporary]
    assert_intact(previous)
    assert container_state(host, unique_env)['Running']

    following = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host)))
    assert following['changed'] and str(folder / temporary) in following['cleaned']
    assert temporaries(folder) == []
    assert visible(folder) == [following['tarball']['file'], following['tarball']['file'] + '.json']
    check_tarball_against_sidecar(following['tarball']['path'])
    assert container_state(host, unique_env)['Running']


def test_sigterm_while_saving_cleans_up_before_exiting(host, environments, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env, image=PYTHON, payload_mb=160)
    process = start_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host))
    wait_for_temporary(str(folder), 32 << 20, process)
    process.send_signal(signal.SIGTERM)
    result = result_of(process)
    assert result['failed'] and result['msg'] == 'Interrupted by SIGTERM; nothing was published.'
    assert visible(folder) == [] and temporaries(folder) == []
    # The container continues from the commit (nothing it holds is lost), and Docker keeps the only tag of an image
    # a running container uses: :base names that commit, or nothing.
    tagged = inspect_image(host, image_reference(unique_env))
    assert tagged is None or tagged['Id'] == inspect_container_image(host, unique_env)
    assert container_state(host, unique_env)['Running']


def test_a_container_a_killed_run_left_stopped_is_started_by_the_next_run(host, environments, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    container_id = environments.make(host, unique_env)
    # What a run killed between stopping the container and starting it again leaves behind.
    (folder / ('.%s.restart' % unique_env)).write_text(json.dumps({'container_id': container_id}))
    subprocess.run(['docker', '-H', host, 'stop', '-t', '1', container_id], check=True, capture_output=True)
    result = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host)))
    assert 'restarted the container an interrupted run had stopped' in result['reasons']
    assert str(folder / ('.%s.restart' % unique_env)) in result['cleaned']
    assert container_state(host, unique_env)['Running']
    assert not (folder / ('.%s.restart' % unique_env)).exists()


def test_a_container_that_cannot_start_again_publishes_nothing_and_the_next_run_starts_it(host, environments, unique_env,
                                                                                          shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    marker = folder / ('.%s.restart' % unique_env)
    ensure_image(host, BUSYBOX)
    # The container joins the network of a helper: once the helper is stopped, Docker refuses to start it again.
    helper = docker_cli(host, 'run', '-d', '--name', unique_env + '-netns', BUSYBOX, *IDLE).strip()
    try:
        environments.loaded_on(host, unique_env)
        docker_cli(host, 'run', '-d', '--name', container_name(unique_env), '--network', 'container:' + helper,
                   '--label', LABEL_MANAGED + '=true', '--label', LABEL_ENV + '=' + unique_env, BUSYBOX, *IDLE)
        args = dict(name=unique_env, tarball_dir=str(folder), docker_host=host, force=True)
        previous = ok(run_module('tarball', args))['tarball']
        docker_cli(host, 'stop', '-t', '1', helper)
        assert container_state(host, unique_env)['Running']

        result = run_module('tarball', args)
        assert result['failed'] and 'could not start it again: ' in result['msg'] and 'Nothing was published' in result['msg']
        assert 'cannot join network' in result['msg']
        assert visible(folder) == [previous['file'], previous['file'] + '.json'] and temporaries(folder) == []
        assert_intact(previous)
        assert inspect_image(host, image_reference(unique_env))['Id'] == previous['image_id']
        assert marker.exists() and not container_state(host, unique_env)['Running']

        docker_cli(host, 'start', helper)
        following = ok(run_module('tarball', args))
        assert 'restarted the container an interrupted run had stopped' in following['reasons']
        assert following['changed'] and not marker.exists() and container_state(host, unique_env)['Running']
        check_tarball_against_sidecar(following['tarball']['path'])
    finally:
        docker_cli(host, 'rm', '-f', container_name(unique_env), helper)


@contextlib.contextmanager
def small_filesystem(path, size):
    path.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%d,mode=0755' % size, 'tmpfs', str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(['umount', str(path)], check=True)


def fill_until_free(folder, free):
    """Write a filler file so that folder's filesystem keeps about `free` bytes."""
    stats = os.statvfs(folder)
    available = stats.f_bavail * stats.f_frsize
    assert available > free
    with open(os.path.join(folder, 'filler'), 'wb') as handle:
        handle.write(b'\0' * (available - free))
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def test_a_full_folder_is_a_clear_error_and_loses_nothing(host, environments, unique_env, tmp_path):
    environments.make(host, unique_env, payload_mb=6)
    roomy = tmp_path / 'roomy'
    roomy.mkdir()
    with small_filesystem(tmp_path / 'small', 64 << 20) as small:
        folder = small / 'kohakuriver-containers'
        previous = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host)))['tarball']
        environments.exec(host, unique_env, 'head -c 3000000 /dev/urandom > /kr-more')
        # The same content packaged where there is room tells the image size and the tarball size to expect.
        sized = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(roomy), docker_host=host)))['tarball']
        image_size = inspect_image(host, image_reference(unique_env))['Size']
        assert sized['size'] - image_size > 64 << 10

        # Less room than the image: refused before writing anything.
        fill_until_free(str(small), image_size // 2)
        refused = run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host))
        assert refused['failed'] and refused['msg'].startswith('Tarball folder %s is full: ' % folder)
        assert refused['msg'].endswith('free space or set tarball_dir. Nothing was published.')
        assert visible(folder) == [previous['file'], previous['file'] + '.json'] and temporaries(folder) == []
        assert_intact(previous)
        assert container_state(host, unique_env)['Running']
        assert inspect_image(host, image_reference(unique_env))['Id'] == sized['image_id']

        # Room for the image but not for the archive: the disk fills up while the image is written.
        os.unlink(str(small / 'filler'))
        fill_until_free(str(small), image_size + (sized['size'] - image_size) // 2)
        full = run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host))
        assert full['failed'] and full['msg'].startswith('Tarball folder %s is full (No space left on device) after ' % folder)
        assert visible(folder) == [previous['file'], previous['file'] + '.json'] and temporaries(folder) == []
        assert_intact(previous)
        assert container_state(host, unique_env)['Running']
        assert inspect_image(host, image_reference(unique_env))['Id'] == sized['image_id']


def test_the_daemon_stopping_while_saving_publishes_nothing(host, unique_env, shared_dir):
    # SIGKILL: a SIGTERM lets dockerd finish the save it is streaming before it exits.
    folder = shared_dir / 'kohakuriver-containers'
    with throwaway_dockerd(unique_env, image=PYTHON, from_host=host) as daemon:
        own = daemon['docker_host']
        with contextlib.closing(docker.DockerClient(base_url=own, version='auto', timeout=300)) as api:
            container = api.containers.run(PYTHON, IDLE, name='kohakuriver-env-' + unique_env, detach=True,
                                           network_mode='none', labels={LABEL_MANAGED: 'true', LABEL_ENV: unique_env})
            container.exec_run(['sh', '-c', 'head -c 160000000 /dev/urandom > /kr-payload'])
        previous = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=own)))['tarball']
        with contextlib.closing(docker.DockerClient(base_url=own, version='auto', timeout=300)) as api:
            api.containers.get('kohakuriver-env-' + unique_env).exec_run(['touch', '/kr-changed'])

        process = start_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=own))
        wait_for_temporary(str(folder), 16 << 20, process)
        daemon['kill']()
        result = result_of(process)

        assert result['failed']
        assert result['msg'].startswith('The Docker daemon at %s stopped sending %s for %s/%s-' % (
            own, image_reference(unique_env), folder, unique_env)), result['msg']
        # The container continuing from the commit (on a thread) may have met the dead daemon too: that is said after.
        assert 'Nothing was published.' in result['msg']
        assert visible(folder) == [previous['file'], previous['file'] + '.json'] and temporaries(folder) == []
        assert_intact(previous)


def slow_to_stop(docker_host, environments, env):
    """An environment container whose process ignores SIGTERM (sh as PID 1, no trap): a stop takes its whole timeout."""
    ensure_image(docker_host, BUSYBOX)
    environments.loaded_on(docker_host, env)
    return docker_cli(docker_host, 'run', '-d', '--name', container_name(env), '--label', LABEL_MANAGED + '=true',
                      '--label', LABEL_ENV + '=' + env, BUSYBOX, 'sh', '-c', 'while :; do sleep 1; done').strip()


@contextlib.contextmanager
def stop_signals(docker_host, container_id):
    """The daemon's kill events for the container (a stop sends SIGTERM first): `docker events`, from before now."""
    events = subprocess.Popen(['docker', '-H', docker_host, 'events', '--since', str(int(time.time()) - 1),
                               '--filter', 'container=' + container_id, '--filter', 'event=kill',
                               '--format', '{{.Action}} {{index .Actor.Attributes "signal"}}'],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        yield events
    finally:
        events.kill()
        events.wait(30)


def wait_for_stop_to_begin(events, process, timeout=120):
    ready = select.select([events.stdout], [], [], timeout)[0]
    assert ready and process.poll() is None, 'no stop began while the module ran'
    assert events.stdout.readline().split() == ['kill', '15']


def test_sigterm_while_the_container_is_stopped_for_its_commit_leaves_it_running(host, environments, unique_env,
                                                                                 shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    container_id = slow_to_stop(host, environments, unique_env)
    started = container_state(host, unique_env)['StartedAt']
    with stop_signals(host, container_id) as events:
        process = start_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host, stop_timeout=5))
        wait_for_stop_to_begin(events, process)
        process.send_signal(signal.SIGTERM)
        result = result_of(process)
    assert result['failed'] and result['msg'] == 'Interrupted by SIGTERM; nothing was published.'
    # Started again after the stop ended, not during it (which left it exited once the daemon's stop finished).
    state = container_state(host, unique_env)
    assert state['Running'] and state['StartedAt'] > started
    assert not (folder / ('.%s.restart' % unique_env)).exists()
    assert visible(folder) == [] and temporaries(folder) == []


def test_sigkill_while_the_container_is_stopped_for_its_commit_is_repaired_by_the_next_run(
        host, environments, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    container_id = slow_to_stop(host, environments, unique_env)
    with stop_signals(host, container_id) as events:
        process = start_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host, stop_timeout=3))
        wait_for_stop_to_begin(events, process)
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    docker_cli(host, 'wait', container_id)
    assert not container_state(host, unique_env)['Running']
    assert (folder / ('.%s.restart' % unique_env)).exists() and visible(folder) == []

    following = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host, stop_timeout=3)))
    assert 'restarted the container an interrupted run had stopped' in following['reasons']
    assert following['changed'] and container_state(host, unique_env)['Running']
    assert not (folder / ('.%s.restart' % unique_env)).exists()


def test_the_daemon_dying_during_the_stop_is_reported_with_the_step_and_the_failed_restart(host, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    with throwaway_dockerd(unique_env, image=BUSYBOX, from_host=host) as daemon:
        own = daemon['docker_host']
        container_id = docker_cli(own, 'run', '-d', '--network', 'none', '--name', container_name(unique_env),
                                  '--label', LABEL_MANAGED + '=true', '--label', LABEL_ENV + '=' + unique_env, BUSYBOX,
                                  'sh', '-c', 'while :; do sleep 1; done').strip()
        with stop_signals(own, container_id) as events:
            process = start_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=own, stop_timeout=60))
            wait_for_stop_to_begin(events, process)
            daemon['kill']()
            result = result_of(process)

    assert result['failed']
    prefix = 'Packaging %s on %s into %s/%s-' % (container_name(unique_env), own, folder, unique_env)
    assert result['msg'].startswith(prefix), result['msg']
    assert ' failed while stopping %s for its commit: ' % container_name(unique_env) in result['msg']
    assert 'Nothing was published. The container could not be started again either: ' in result['msg']
    assert visible(folder) == [] and temporaries(folder) == []
    assert (folder / ('.%s.restart' % unique_env)).exists()


def test_a_missing_tarball_dir_is_created_but_never_its_missing_parent(host, environments, unique_env, tmp_path):
    environments.make(host, unique_env)
    started = container_state(host, unique_env)['StartedAt']
    unmounted = tmp_path / 'not-mounted' / 'kohakuriver-containers'
    refused = run_module('tarball', dict(name=unique_env, tarball_dir=str(unmounted), docker_host=host))
    assert refused['failed'] and refused['msg'] == (
        'The parent %s of tarball_dir does not exist; mount the shared storage or create it first.' % unmounted.parent)
    assert not unmounted.parent.exists()
    assert container_state(host, unique_env)['StartedAt'] == started

    missing = tmp_path / 'kohakuriver-containers'
    made = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(missing), docker_host=host)))
    assert oct(os.stat(missing).st_mode & 0o777) == '0o755'
    assert visible(missing) == [made['tarball']['file'], made['tarball']['file'] + '.json']


def test_an_unwritable_tarball_dir_is_refused_before_the_container_is_touched(host, environments, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    started = container_state(host, unique_env)['StartedAt']
    subprocess.run(['mount', '--bind', str(folder), str(folder)], check=True)
    try:
        subprocess.run(['mount', '-o', 'remount,ro,bind', str(folder)], check=True)
        refused = run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host))
    finally:
        subprocess.run(['umount', str(folder)], check=True)
    assert refused['failed'] and refused['msg'] == (
        'Tarball folder %s is not writable (read-only file system); fix its permissions or mount, or set tarball_dir.'
        % folder)
    assert container_state(host, unique_env)['StartedAt'] == started
    assert os.listdir(folder) == []


def test_an_environment_without_container_is_a_clear_error(host, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    for check in (False, True):
        result = run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host), check=check)
        assert result['failed'] and result['msg'] == (
            'Environment %s has no container kohakuriver-env-%s on %s; create it first with kohakuriver.docker.container.'
            % (unique_env, unique_env, host))
    assert os.listdir(folder) == []


def test_two_packagings_at_once_are_serialised(host, environments, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env, payload_mb=20)
    args = dict(name=unique_env, tarball_dir=str(folder), docker_host=host, keep=2, force=True)
    results = [ok(result_of(process)) for process in [start_module('tarball', args), start_module('tarball', args)]]
    assert sorted(result['tarball']['timestamp'] for result in results)[0] < max(r['tarball']['timestamp'] for r in results)
    assert max(result['waited_for_lock'] for result in results) > 0
    assert visible(folder) == sorted(name for result in results for name in (result['tarball']['file'], result['tarball']['file'] + '.json'))
    for result in results:
        check_tarball_against_sidecar(result['tarball']['path'])
    assert container_state(host, unique_env)['Running']

    environments.exec(host, unique_env, 'touch /kr-changed')
    args.update(force=False)
    results = [result_of(process) for process in [start_module('tarball', args), start_module('tarball', args)]]
    assert sorted(ok(result)['changed'] for result in results) == [False, True]
    newest = [result['tarball'] for result in results if result['changed']][0]
    assert [result['tarball'] for result in results if not result['changed']] == [newest]
    assert container_state(host, unique_env)['Running']


def test_two_in_the_same_second_never_share_a_name_nor_run_ahead_of_the_image(host, environments, unique_env, shared_dir):
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    ahead = int(time.time()) + 3
    (folder / ('%s-%d.tar' % (unique_env, ahead))).write_bytes(b'KohakuRiver tarball from the same second, or later')
    first = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host, keep=5)))['tarball']
    second = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host, keep=5,
                                           force=True)))['tarball']
    assert first['timestamp'] == ahead + 1
    assert second['timestamp'] > first['timestamp']
    for made in (first, second):
        assert created_second({'Created': json.load(open(made['path'] + '.json'))['image_created']}) >= made['timestamp']
    assert created_second(inspect_image(host, image_reference(unique_env))) >= second['timestamp']

    far = int(time.time()) + 3600
    (folder / ('%s-%d.tar' % (unique_env, far))).write_bytes(b'from a clock far ahead')
    refused = run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host, force=True))
    assert refused['failed'] and 'ahead of the clock of %s; fix that clock or remove the tarball' % host in refused['msg']
