"""Two versions of one environment in the test bed's plain registry and on a share, for the registry sync tests.

`versions` (module scope) packages v1 with the tarball factory (a tarball and its sidecar), then v2 = v1 plus one small
layer, pushes each to `<plain>/<namespace>/<env>:<timestamp>` with the docker CLI and records the pushed digest in
its sidecar's `registry` field, as packaging with a registry does. The registry's manifests, the Host's images and
whatever a test pulled onto a runner go afterwards.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import sidecar_image_ids

from registry_support import docker_cli, plain_api
from runner_helpers import remove_env_from
from tarball_factory import BUSYBOX, TarballFactory, read_sidecar, write_sidecar
from tarball_support import ensure_image


class Versions(object):
    """v1 and v2 (dicts: timestamp, digest, image_id, tarball, sidecar, layers), where they are, and helpers."""

    def __init__(self, registries, env, namespace, share, host):
        self.registries = registries
        self.env = env
        self.namespace = namespace
        self.share = share
        self.host = host
        self.path = '%s/%s' % (namespace, env)
        self.repository = '%s/%s' % (registries['plain'], self.path)
        self.api = plain_api(registries)
        self.v1 = self.v2 = None

    @property
    def registry(self):
        """The module's registry option for the plain registry."""
        return dict(url=self.registries['plain'], namespace=self.namespace)

    def push(self, tarball):
        """Push the tarball's image as :<timestamp> and record the digest in its sidecar; the version's dict."""
        sidecar = read_sidecar(tarball)
        reference = '%s:%d' % (self.repository, sidecar['timestamp'])
        docker_cli(self.host, 'tag', sidecar['image_id'], reference)
        docker_cli(self.host, 'push', reference)
        digest = self.api.digest(self.path, str(sidecar['timestamp']))
        sidecar['registry'] = dict(repository=self.repository, tag=str(sidecar['timestamp']), digest=digest)
        write_sidecar(tarball, sidecar)
        layers = [layer['digest'] for layer in self.api.manifest(self.path, digest)['layers']]
        return dict(timestamp=sidecar['timestamp'], digest=digest, image_id=sidecar['image_id'], tarball=tarball,
                    sidecar=sidecar, layers=layers)

    def point_latest_at(self, version):
        """Move the registry's latest tag to a version (as the next publish does)."""
        latest = '%s:latest' % self.repository
        docker_cli(self.host, 'tag', '%s:%d' % (self.repository, version['timestamp']), latest)
        docker_cli(self.host, 'push', latest)
        docker_cli(self.host, 'rmi', latest)
        assert self.api.digest(self.path, 'latest') == version['digest']

    def share_of(self, folder, *versions, **sidecar_changes):
        """A tarball folder in folder holding the versions' tarballs (hard links) and sidecars (copies, with
        sidecar_changes applied to the newest one's); its path."""
        folder.mkdir(parents=True, exist_ok=True)
        for index, version in enumerate(versions):
            target = folder / os.path.basename(version['tarball'])
            os.link(version['tarball'], str(target))
            sidecar = dict(version['sidecar'])
            if index == len(versions) - 1:
                sidecar.update(sidecar_changes)
            write_sidecar(str(target), sidecar)
        return str(folder)

    def expected_id(self, node, version):
        """The ID a pulled version has on the runner: the config digest, or on the containerd store the digest pulled."""
        return version['digest'] if node['image_store'] == 'containerd' else version['image_id']

    def loaded_ids(self, node, version):
        """The IDs a version loaded from its tarball may have on the runner: the config digest, or on the containerd
        store the manifest containerd makes of the docker-legacy archive (image_identity, from the sidecar)."""
        if node['image_store'] != 'containerd':
            return (version['image_id'],)
        return sidecar_image_ids(version['sidecar'])

    def clean(self, client):
        """Remove env's images and what was pulled from the repository from one runner, by name too: the containerd
        image store does not list an image whose layers it took from another image."""
        pulled = [image.id for image in client.images.list(name=self.repository)]
        remove_env_from(client, self.env, pulled)
        names = ['kohakuriver/%s:base' % self.env] + ['%s@%s' % (self.repository, version['digest'])
                                                      for version in (self.v1, self.v2) if version]
        names += ['kohakuriver/%s:%d' % (self.env, version['timestamp']) for version in (self.v1, self.v2) if version]
        for name in names:
            with contextlib.suppress(docker.errors.NotFound):
                client.api.remove_image(name, force=True)

    def held(self, node, version):
        """Does the runner still hold the version pulled by its digest?"""
        try:
            return node['client'].api.inspect_image('%s@%s' % (self.repository, version['digest']))['Id'] is not None
        except docker.errors.NotFound:
            return False


@pytest.fixture(scope='module')
def versions(testbed, registries, tmp_path_factory):
    host = testbed['host']['docker_host']
    ensure_image(host, '127.0.0.1:5000/' + BUSYBOX)
    marker = uuid.uuid4().hex[:10]
    share = tmp_path_factory.mktemp('registry-sync') / 'kohakuriver-containers'
    share.mkdir()
    made = Versions(registries, 'krtest-%s' % marker, 'krtest-ns-%s' % marker, str(share), host)
    factory = TarballFactory(host, share, runnable=True)
    try:
        made.v1 = made.push(factory.make(made.env))
        factory.base_image = made.v1['image_id']
        made.v2 = made.push(factory.make(made.env))
        assert made.v2['layers'][:-1] == made.v1['layers'] and len(made.v2['layers']) == len(made.v1['layers']) + 1
        yield made
    finally:
        with contextlib.suppress(Exception):
            made.api.delete(made.path)
        for version in (made.v1, made.v2):
            if version:
                docker_cli(host, 'rmi', '%s:%d' % (made.repository, version['timestamp']), check=False)
        factory.cleanup()


@pytest.fixture
def on_runner(request, testbed, versions):
    """A runner node of the test bed (parametrize on_runner indirectly with its name) with a client as ['client']; the
    versions' environment is removed from it before and after."""
    node = dict([found for found in testbed['runners'] if found['name'] == request.param][0])
    node['client'] = docker.DockerClient(base_url=node['docker_host'], version='auto', timeout=300)
    versions.clean(node['client'])
    yield node
    versions.clean(node['client'])
    node['client'].close()


def base_id(node, env):
    try:
        return node['client'].api.inspect_image('kohakuriver/%s:base' % env)['Id']
    except docker.errors.NotFound:
        return None


def run_in_base(node, env, script):
    """KohakuRiver's runner form: docker run --rm kohakuriver/<env>:base /bin/sh -c script; its stdout."""
    return docker_cli(node['docker_host'], 'run', '--rm', 'kohakuriver/%s:base' % env, '/bin/sh', '-c', script).stdout
