"""The real chain: container + container_exec + tarball on the Host, then image_sync and task on both runner engines.

The other runner tests make their tarballs with tarball_factory (the contract done by hand); these use the tarball
module itself, so a drift between what it writes and what the runner reads shows here.
"""

from __future__ import annotations

import docker
import pytest

from support.ansible_runs import run_module
from runner_helpers import base_of, has_image, image_id_on, runner  # noqa: F401 pylint: disable=unused-import
from tarball_factory import read_sidecar

pytestmark = pytest.mark.integration


@pytest.fixture
def host_env(testbed, unique_env, shared_dir):
    """An environment container on the Host (busybox from the local registry); removed with its images afterwards."""
    host = dict(docker_host=testbed['host']['docker_host'])
    created = run_module('container', dict(host, name=unique_env, image=testbed['images']['busybox']))
    assert not created.get('failed'), created
    yield dict(host, name=unique_env, tarball_dir=str(shared_dir / 'kohakuriver-containers'))
    run_module('container', dict(host, name=unique_env, state='absent'))
    client = docker.DockerClient(base_url=host['docker_host'], version='auto')
    for image in client.images.list(name='kohakuriver/%s' % unique_env):
        client.images.remove(image.id, force=True)
    client.close()


def package(host_env, version):
    exec_args = dict(docker_host=host_env['docker_host'], name=host_env['name'], command='echo %s > /kr-version' % version)
    written = run_module('container_exec', exec_args)
    assert written.get('rc') == 0, written
    made = run_module('tarball', dict(host_env))
    assert made['changed'] and made['tarball']['image_id'], made
    return made['tarball']


def test_tarballs_of_the_tarball_module_load_verified_and_run_tasks(runner, host_env, shared_dir, sync_args_for):
    first = package(host_env, 'v1')
    first_id = image_id_on(runner, read_sidecar(first['path']))  # the ID this runner gives it (a later packaging may remove the tarball)
    synced = run_module('image_sync', sync_args_for(runner, host_env))
    assert synced['loaded'] and synced['verified'] and synced['image_id'] == first_id, synced
    base = base_of(runner, host_env['name'])
    assert base['Config']['Labels']['io.kohakuriver.docker.timestamp'] == str(first['timestamp'])
    assert 'kohakuriver/%s:%d' % (host_env['name'], first['timestamp']) in base['RepoTags']

    task = dict(env=host_env['name'], shared_dir=str(shared_dir), state_dir=sync_args_for(runner, host_env)['state_dir'],
                docker_host=runner['docker_host'], argv=['cat', '/kr-version'])
    ran = run_module('task', task)
    assert ran.get('rc') == 0 and ran['stdout'] == 'v1\n', ran  # the environment's keep-alive entrypoint is not used
    assert not ran['sync']['changed']

    second = package(host_env, 'v2')
    ran = run_module('task', task)  # the task syncs the new version itself
    assert ran.get('rc') == 0 and ran['stdout'] == 'v2\n' and ran['sync']['loaded'], ran
    assert ran['image_id'] == image_id_on(runner, read_sidecar(second['path']))
    assert has_image(runner, first_id)
    assert not run_module('image_sync', sync_args_for(runner, host_env))['changed']


@pytest.fixture
def sync_args_for(tmp_path):
    def args(runner_node, env):
        return dict(name=env['name'], tarball_dir=env['tarball_dir'], docker_host=runner_node['docker_host'],
                    state_dir=str(tmp_path / ('state-%s' % runner_node['name'])))
    return args
