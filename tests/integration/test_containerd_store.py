"""The containerd image store (runner3 of the test bed: Docker 26 with the containerd-snapshotter feature): what is
specific to it. There an image's ID is its manifest digest, not its config digest; this proves with the docker CLI
(`docker save`, `docker run`), never with our own code, that what image_sync loads (whole or thin), reports and
tags is the tarball's image, and that a tarball packaged on a daemon with that store loads on every runner.

The rest of every sync path (up to date, re-tag, refused thin archives and their fallback warning, prune, tasks) runs
on runner3 through the `runner` fixture of the image_sync, trust, task and tarball-module tests."""

from __future__ import annotations

import json
import subprocess
import tarfile

import docker
import pytest

from support.ansible_runs import run_module
from runner_helpers import factory, remove_env_from, runner_node  # noqa: F401 pylint: disable=unused-import
from tarball_factory import read_sidecar

pytestmark = pytest.mark.integration


@pytest.fixture
def store_runner(testbed):
    node = [node for node in testbed['runners'] if node.get('image_store') == 'containerd']
    if not node:
        pytest.fail('the test bed has no runner with the containerd image store (testbed.py up adds runner3)')
    return node[0]


def docker_cli(node, *words, **kwargs):
    return subprocess.run(['docker', '-H', node['docker_host']] + list(words), capture_output=True, text=True, check=True,
                          timeout=300, **kwargs).stdout


def saved_identity(node, reference, folder):
    """(manifest digest, config digest) of an image as `docker save` writes it: index.json's manifest and its config."""
    archive = str(folder / 'saved.tar')
    docker_cli(node, 'save', '-o', archive, reference)
    with tarfile.open(archive) as tar:
        index = json.load(tar.extractfile('index.json'))
        manifest_digest = index['manifests'][0]['digest']
        manifest = json.load(tar.extractfile('blobs/sha256/' + manifest_digest[len('sha256:'):]))
    return manifest_digest, manifest['config']['digest']


def sync_args(node, env, shared_dir, tmp_path):
    return dict(name=env, tarball_dir=str(shared_dir / 'kohakuriver-containers'), docker_host=node['docker_host'],
                state_dir=str(tmp_path / 'state'))


def test_the_store_runner_keeps_images_in_containerd(store_runner):
    assert 'io.containerd.snapshotter.v1' in docker_cli(store_runner, 'info', '--format', '{{json .DriverStatus}}')


def test_a_whole_then_a_thin_load_give_the_tarballs_images_as_docker_save_shows_them(
        store_runner, factory, unique_env, shared_dir, tmp_path):
    args = sync_args(store_runner, unique_env, shared_dir, tmp_path)
    client = docker.DockerClient(base_url=store_runner['docker_host'], version='auto')
    try:
        factory.unique_base(unique_env)  # no runner holds its layer: the first load is whole
        first_path = factory.make(unique_env)
        first = run_module('image_sync', args)
        assert first['loaded'] and first['verified'] and not first['thin'], first
        second_path = factory.make(unique_env)
        second = run_module('image_sync', args)
        # the bottom layer is in the content store: only the top one goes, as an OCI layout, and the daemon takes it
        assert second['loaded'] and second['verified'] and second['thin'] and second['layers_skipped'] >= 1, second
        assert not [warning for warning in second.get('warnings', []) if 'refused' in warning], second
        for path, result in ((first_path, first), (second_path, second)):
            manifest_digest, config_digest = saved_identity(store_runner, result['image_id'], tmp_path)
            assert config_digest == read_sidecar(path)['image_id'] and manifest_digest == result['image_id'], result
        assert client.api.inspect_image('kohakuriver/%s:base' % unique_env)['Id'] == second['image_id']
        version = docker_cli(store_runner, 'run', '--rm', '--entrypoint', 'cat', 'kohakuriver/%s:base' % unique_env,
                             '/kr-version')
        assert version.startswith('%s-%d-' % (unique_env, read_sidecar(second_path)['timestamp'])), version
        again = run_module('image_sync', args)
        assert not again['changed'] and again['verified'] and again['image_id'] == second['image_id'], again
    finally:
        remove_env_from(client, unique_env)
        client.close()


def test_a_tarball_packaged_on_a_containerd_store_daemon_loads_on_every_runner(
        testbed, store_runner, unique_env, shared_dir, tmp_path):
    """The daemon with the containerd store as the Host: the tarball module's sidecar names the config digest (not the
    ID that daemon shows), and each kind of runner loads it verified."""
    maker = dict(docker_host=store_runner['docker_host'])
    created = run_module('container', dict(maker, name=unique_env, image=testbed['images']['busybox'],
                                           pull='never'))
    try:
        assert not created.get('failed'), created
        assert run_module('container_exec', dict(maker, name=unique_env, command='echo packaged > /kr-version')).get('rc') == 0
        made = run_module('tarball', dict(maker, name=unique_env, tarball_dir=str(shared_dir / 'kohakuriver-containers')))
        assert not made.get('failed') and made['changed'], made
        sidecar = read_sidecar(made['tarball']['path'])
        assert sidecar['archive_format'] == 'oci' and made['tarball']['image_id'] == sidecar['image_id'], made
        for name in ('runner1', 'runner2'):
            node = runner_node(testbed, name)
            synced = run_module('image_sync', sync_args(node, unique_env, shared_dir, tmp_path / name))
            try:
                assert synced['loaded'] and synced['verified'] and synced['image_id'] == sidecar['image_id'], synced
                assert docker_cli(node, 'run', '--rm', '--entrypoint', 'cat', 'kohakuriver/%s:base' % unique_env,
                                  '/kr-version') == 'packaged\n'
            finally:
                remove_env_on(node, unique_env)
    finally:
        run_module('container', dict(maker, name=unique_env, state='absent'))
        remove_env_on(store_runner, unique_env)


def remove_env_on(node, env):
    client = docker.DockerClient(base_url=node['docker_host'], version='auto')
    try:
        remove_env_from(client, env)
    finally:
        client.close()
