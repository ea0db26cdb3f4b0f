"""A tarball in KohakuRiver's own shape lists, syncs and runs: made as its `tar create` makes it (the number taken
before the commit, `docker save kohakuriver/<env>:base` with its tag streamed straight into the final name, no
sidecar), with the plain docker CLI."""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from support.ansible_runs import run_module, warnings_of
from runner_helpers import base_of, runner  # noqa: F401 pylint: disable=unused-import
from tarball_support import BUSYBOX, docker_cli, ensure_image, environments  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


@pytest.fixture
def kohakuriver_tarball(testbed, environments, shared_dir, unique_env):
    """(path, version line) of a tarball of unique_env made the way KohakuRiver's host makes it."""
    host = testbed['host']['docker_host']
    ensure_image(host, BUSYBOX)
    environments.loaded_on(host, unique_env)  # its container and kohakuriver/<env> images go afterwards
    version = 'kohakuriver-%s-%s' % (unique_env, uuid.uuid4().hex)
    container = 'kohakuriver-env-%s' % unique_env
    docker_cli(host, 'run', '-d', '--name', container, '--network', 'none', BUSYBOX, 'sh', '-c',
               'echo %s > /kr-version && exec sleep 3600' % version)
    docker_cli(host, 'stop', '-t', '1', container)
    timestamp = int(time.time())  # KohakuRiver takes the number before committing
    docker_cli(host, 'commit', container, 'kohakuriver/%s:base' % unique_env)
    path = str(shared_dir / 'kohakuriver-containers' / ('%s-%d.tar' % (unique_env, timestamp)))
    subprocess.run('docker -H %s save kohakuriver/%s:base > %s' % (host, unique_env, path), shell=True, check=True)
    return path, version


def test_tarball_info_lists_it_unverified(kohakuriver_tarball, shared_dir, unique_env):
    path, _version = kohakuriver_tarball
    listed = run_module('tarball_info', dict(tarball_dir=str(shared_dir / 'kohakuriver-containers'), name=unique_env))
    assert [entry['path'] for entry in listed['tarballs']] == [path], listed
    entry = listed['tarballs'][0]
    assert not entry['verified'] and entry['sha256'] is None and entry['image_id'] is None and entry['problem'] is None
    assert entry['size'] == os.path.getsize(path)


def test_it_syncs_and_runs_with_docker_run_and_with_the_task_module(
        runner, kohakuriver_tarball, shared_dir, unique_env, tmp_path):
    path, version = kohakuriver_tarball
    assert not os.path.exists(path + '.json')
    args = dict(name=unique_env, tarball_dir=str(shared_dir / 'kohakuriver-containers'), docker_host=runner['docker_host'],
                state_dir=str(tmp_path / 'state'))
    synced = run_module('image_sync', args)
    assert synced['changed'] and synced['loaded'] and not synced['verified'] and synced['action'] == 'load', synced
    assert any('unverified' in warning for warning in warnings_of(synced))
    timestamp = int(os.path.basename(path)[len(unique_env) + 1:-len('.tar')])
    base = base_of(runner, unique_env)
    assert base['Id'] == synced['image_id']
    assert sorted(base['RepoTags']) == sorted(['kohakuriver/%s:base' % unique_env, 'kohakuriver/%s:%d' % (unique_env, timestamp)])

    # KohakuRiver's task form, with the plain docker CLI on the runner's daemon.
    ran = docker_cli(runner['docker_host'], 'run', '--rm', '--network', 'none', 'kohakuriver/%s:base' % unique_env,
                     '/bin/sh', '-c', 'cat /kr-version && echo from-the-cli')
    assert ran == '%s\nfrom-the-cli\n' % version
    task = run_module('task', dict(env=unique_env, command='cat /kr-version', shared_dir=str(shared_dir),
                                   state_dir=args['state_dir'], docker_host=runner['docker_host']))
    assert task.get('rc') == 0 and task['stdout'] == version + '\n', task
    assert not task['sync']['changed'] and not task['sync']['verified']

    again = run_module('image_sync', args)
    assert not again['changed'] and again['action'] == 'none' and not again['verified'] and again['bytes_read'] == 0, again
