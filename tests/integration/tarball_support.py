"""Helpers of the tarball tests: environment containers made with the Docker SDK, cleanup, independent checks."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import tarfile

import docker
import pytest

from testbed.checksums import file_sha256

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    LABEL_ENV, LABEL_MANAGED, LABEL_TIMESTAMP, container_name, image_reference, image_repository,
)

BUSYBOX = '127.0.0.1:5000/kohakuriver-test/busybox:latest'
PYTHON = '127.0.0.1:5000/kohakuriver-test/debian-python:bookworm'
IDLE = ['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"]
CONTRACT_KEYS = {'format', 'env', 'timestamp', 'file', 'size', 'sha256', 'image_id', 'repo_tags', 'archive_format',
                 'config', 'layers', 'layer_members', 'members', 'source', 'engine', 'created'}
# Which engine loads a tarball made on another one: always the other generation (Docker 26 <-> 20.10).
LOADER = {'host': 'runner2', 'runner1': 'runner2', 'runner2': 'runner1'}


def client(docker_host):
    return docker.DockerClient(base_url=docker_host, version='auto', timeout=300)


def engine(docker_hosts, name):
    for found in docker_hosts:
        if found['name'] == name:
            return found
    pytest.fail('the test bed has no engine %s' % name)


def ensure_image(docker_host, image):
    with contextlib.closing(client(docker_host)) as api:
        try:
            api.images.get(image)
        except docker.errors.ImageNotFound:
            api.images.pull(image)


sha256_file = file_sha256


def remove_env_from(docker_host, env):
    """Remove env's container and every image of env (ours by label or by repository) from docker_host."""
    with contextlib.closing(client(docker_host)) as api:
        for found in api.api.containers(all=True, filters={'name': container_name(env)}):
            if '/' + container_name(env) in found['Names']:
                api.api.remove_container(found['Id'], force=True)
        images = api.api.images(filters={'label': '%s=%s' % (LABEL_ENV, env)}) + api.api.images(name=image_repository(env))
        for image in images:
            with contextlib.suppress(docker.errors.NotFound):
                api.api.remove_image(image['Id'], force=True)


class Environments(object):
    """Environment containers of one test, made with the Docker SDK; cleanup() removes them and their images."""

    def __init__(self):
        self.made = set()

    def make(self, docker_host, env, image=BUSYBOX, running=True, payload_mb=0, labels=True):
        self.made.add((docker_host, env))
        ensure_image(docker_host, image)
        with contextlib.closing(client(docker_host)) as api:
            container = api.containers.create(
                image, IDLE, name=container_name(env),
                labels={LABEL_MANAGED: 'true', LABEL_ENV: env} if labels else {'made-by': 'hand'})
            if running or payload_mb:
                container.start()
            if payload_mb:
                self.exec(docker_host, env, 'head -c %d /dev/urandom > /kr-payload' % (payload_mb << 20))
            if payload_mb and not running:
                container.stop(timeout=1)
            return container.id

    def loaded_on(self, docker_host, env):
        self.made.add((docker_host, env))

    @staticmethod
    def exec(docker_host, env, script):
        with contextlib.closing(client(docker_host)) as api:
            code, output = api.containers.get(container_name(env)).exec_run(['sh', '-c', script])
            assert code == 0, output
            return output.decode()

    def cleanup(self):
        for docker_host, env in sorted(self.made):
            remove_env_from(docker_host, env)


@pytest.fixture
def environments():
    made = Environments()
    yield made
    made.cleanup()


def container_state(docker_host, env):
    with contextlib.closing(client(docker_host)) as api:
        return api.api.inspect_container(container_name(env))['State']


def inspect_image(docker_host, reference):
    with contextlib.closing(client(docker_host)) as api:
        try:
            return api.api.inspect_image(reference)
        except docker.errors.NotFound:
            return None


def images_of(docker_host, env):
    with contextlib.closing(client(docker_host)) as api:
        return sorted(image['Id'] for image in api.api.images(filters={'label': '%s=%s' % (LABEL_ENV, env)}))


def docker_cli(docker_host, *args, **kwargs):
    completed = subprocess.run(['docker', '-H', docker_host] + list(args), capture_output=True, text=True,
                               timeout=kwargs.get('timeout', 600), check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def check_tarball_against_sidecar(path):
    """Check a published tarball with tools independent of module_utils: hashlib, Python's tarfile, json."""
    sidecar = json.loads(open(path + '.json').read())
    assert CONTRACT_KEYS <= set(sidecar)
    assert sidecar['format'] == 'kohakuriver.docker/tarball-v1'
    assert sidecar['file'] == os.path.basename(path)
    assert sidecar['size'] == os.path.getsize(path)
    assert sidecar['sha256'] == sha256_file(path)
    with tarfile.open(path) as archive:
        regular = [info for info in archive.getmembers() if info.isfile()]
        assert [(info.name, info.offset_data, info.size) for info in regular] == \
            [(member['name'], member['offset'], member['size']) for member in sidecar['members']]
        manifest = json.load(archive.extractfile('manifest.json'))
    with open(path, 'rb') as handle:
        for member in sidecar['members']:
            handle.seek(member['offset'])
            assert hashlib.sha256(handle.read(member['size'])).hexdigest() == member['sha256'], member['name']
    assert manifest[0]['Config'] == sidecar['config']
    assert manifest[0]['RepoTags'] == sidecar['repo_tags']
    assert sidecar['image_id'] == 'sha256:' + [m['sha256'] for m in sidecar['members'] if m['name'] == sidecar['config']][0]
    assert len(sidecar['layers']) == len(sidecar['layer_members']) == len(manifest[0]['Layers'])
    return sidecar


def labels_of(image):
    return (image.get('Config') or {}).get('Labels') or {}


def created_second(image):
    from ansible_collections.kohakuriver.docker.plugins.module_utils.times import parse_docker_time
    return int(parse_docker_time(image['Created']))


__all__ = ['BUSYBOX', 'PYTHON', 'LOADER', 'LABEL_TIMESTAMP', 'image_reference', 'environments']
