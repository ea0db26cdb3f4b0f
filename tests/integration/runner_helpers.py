"""Fixtures for runner-side tests: a runner node of the test bed (both engine generations), a Host tarball factory
writing into the test's shared folder, and cleanup of exactly what a test put on the runner."""

from __future__ import annotations

import contextlib

import docker
import pytest
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import sidecar_image_ids
from ansible_collections.kohakuriver.docker.plugins.module_utils.sidecar import Sidecar

from tarball_factory import BUSYBOX, TarballFactory
from tarball_support import ensure_image

RUNNERS = ['runner1', 'runner2', 'runner3']


def runner_node(testbed, name):
    return [node for node in testbed['runners'] if node['name'] == name][0]


def remove_env_from(client, env, extra_ids=()):
    """Remove env's task containers and every kohakuriver/<env> image (and extra_ids) from one daemon."""
    for container in client.containers.list(all=True, filters={'label': 'io.kohakuriver.docker.env=%s' % env}):
        container.remove(force=True)
    ids = set(extra_ids)
    for image in client.images.list(name='kohakuriver/%s' % env):
        ids.add(image.id)
    for image_id in ids:
        try:
            client.images.remove(image_id, force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture(params=RUNNERS)
def runner(request, testbed, unique_env):
    """One runner node (dict with name, docker_host, ...) plus a Docker client on it as runner['client'];
    whatever the test put there for unique_env is removed afterwards."""
    node = dict(runner_node(testbed, request.param))
    node['client'] = docker.DockerClient(base_url=node['docker_host'], version='auto', timeout=300)
    node['loaded'] = []
    yield node
    remove_env_from(node['client'], unique_env, node['loaded'])
    node['client'].close()


@pytest.fixture
def factory(testbed, shared_dir):
    """Makes tarballs on the Host engine into <shared_dir>/kohakuriver-containers, from busybox (pulled from the test
    bed's registry when the Host lacks it)."""
    ensure_image(testbed['host']['docker_host'], '127.0.0.1:5000/' + BUSYBOX)
    made = TarballFactory(testbed['host']['docker_host'], shared_dir / 'kohakuriver-containers')
    yield made
    made.cleanup()


@pytest.fixture
def sync_args(runner, unique_env, shared_dir, tmp_path):
    """Arguments of image_sync for unique_env on the runner, with a private state folder."""
    return dict(name=unique_env, tarball_dir=str(shared_dir / 'kohakuriver-containers'), docker_host=runner['docker_host'],
                state_dir=str(tmp_path / ('state-%s' % runner['name'])))


def remove_env_from_runners(testbed, env):
    """remove_env_from on every runner of the test bed."""
    for node in testbed['runners']:
        with contextlib.closing(docker.DockerClient(base_url=node['docker_host'], version='auto')) as client:
            remove_env_from(client, env)


def base_of(runner, env):
    """The inspect dict of kohakuriver/<env>:base on the runner, or None."""
    try:
        return runner['client'].api.inspect_image('kohakuriver/%s:base' % env)
    except docker.errors.NotFound:
        return None


def image_id_on(runner, sidecar):
    """The ID the runner's daemon gives the image a sidecar (dict) describes: its config digest, the sidecar's image_id;
    on the containerd image store the digest of its manifest (image_identity.py; test_containerd_store.py proves that
    one with `docker save`)."""
    ids = sidecar_image_ids(Sidecar(sidecar))
    if runner.get('image_store') != 'containerd':
        return ids[0]
    # an OCI archive has blobs besides its manifest (Docker 26 saves one per layer's legacy config): the manifest is the one loaded
    client = runner.get('client') or docker.DockerClient(base_url=runner['docker_host'], version='auto')
    try:
        return next((image_id for image_id in ids[1:] if has_image(dict(runner, client=client), image_id)), ids[1])
    finally:
        if client is not runner.get('client'):
            client.close()


def has_image(runner, image_id):
    try:
        runner['client'].api.inspect_image(image_id)
        return True
    except docker.errors.NotFound:
        return False
