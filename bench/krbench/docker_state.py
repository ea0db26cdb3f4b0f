"""The Docker side of the benchmarks: the test bed's engines, the synthetic images, resets and the final cleanup.

Everything made here is named krbench-* (containers, images, folders). The environment container and its image
follow the collection's fixed names with a krbench- environment: kohakuriver-env-krbench-<id> and
kohakuriver/krbench-<id>. Cleanup removes those names and images labelled with a krbench-* environment, and
nothing else.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
import time

import docker
from docker.errors import APIError, NotFound

PREFIX = 'krbench-'
LABEL_MANAGED = 'io.kohakuriver.docker.managed'
LABEL_ENV = 'io.kohakuriver.docker.env'
LABEL_TIMESTAMP = 'io.kohakuriver.docker.timestamp'
TESTBED_STATE = os.path.join(os.environ.get('KR_TESTBED_DIR', '/var/tmp/kohakuriver-testbed'), 'state.json')
ENV_FILE = '/krbench-env.bin'
BASE_FILE = '/krbench-base.bin'


@dataclasses.dataclass
class Daemon:
    """One Docker engine of the test bed."""

    name: str
    docker_host: str
    version: str
    api_version: str

    @functools.cached_property
    def client(self):
        return docker.DockerClient(base_url=self.docker_host, version='auto', timeout=1800)

    @property
    def label(self):
        return '%s (Docker %s)' % (self.name, self.version.split('+')[0])

    def has_image(self, reference):
        try:
            self.client.api.inspect_image(reference)
            return True
        except NotFound:
            return False

    def image_id(self, reference):
        try:
            return self.client.api.inspect_image(reference)['Id']
        except NotFound:
            return None

    def remove_image(self, reference):
        """Remove an image and all its tags; a missing one is fine."""
        try:
            self.client.api.remove_image(reference, force=True)
            return True
        except NotFound:
            return False

    def tag(self, image_id, repository, tag):
        self.client.api.tag(image_id, repository, str(tag))

    def load(self, path):
        """docker load of a file, streamed; returns the image IDs the daemon reported."""
        loaded = []
        with open(path, 'rb') as handle:
            for message in self.client.api.load_image(handle):
                if isinstance(message, dict) and message.get('error'):
                    raise RuntimeError('%s: loading %s failed: %s' % (self.name, path, message['error']))
                stream = message.get('stream', '') if isinstance(message, dict) else ''
                if 'Loaded image' in stream:
                    loaded.append(stream.strip())
        return loaded


def testbed_state():
    try:
        with open(TESTBED_STATE, encoding='utf-8') as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise SystemExit('The test bed is not up (no %s): run python3 tests/testbed/testbed.py up' % TESTBED_STATE)


def daemon_of(node):
    return Daemon(node['name'], node['docker_host'], node['engine_version'], node['api_version'])


def wait_gone(check, timeout=60):
    deadline = time.monotonic() + timeout
    while check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


class Images:
    """The synthetic images of one run on the Host: base layer, environment container, tarball versions."""

    def __init__(self, host, run_id, base_bytes, env_bytes, busybox):
        self.host = host
        self.run_id = run_id
        self.env = PREFIX + run_id
        self.base_bytes = base_bytes
        self.env_bytes = env_bytes
        self.busybox = busybox
        self.base_image = '%s%s-base:latest' % (PREFIX, run_id)
        self.container_name = 'kohakuriver-env-' + self.env
        self.pulled_busybox = False

    @property
    def repository(self):
        return 'kohakuriver/' + self.env

    def _run_to_end(self, image, name, script, labels=None):
        container = self.host.client.containers.create(image, name=name, entrypoint=['sh', '-c', script],
                                                       labels=labels or {})
        container.start()
        status = container.wait(timeout=1800)
        if status.get('StatusCode') != 0:
            raise RuntimeError('%s failed: %s' % (name, container.logs()[-2000:]))
        return container

    def build(self):
        """The base image (busybox + base_bytes of /dev/urandom) and the stopped environment container on it."""
        if not self.host.has_image(self.busybox):
            self.host.client.images.pull(self.busybox)
            self.pulled_busybox = True
        builder = self._run_to_end(self.busybox, '%s%s-build' % (PREFIX, self.run_id),
                                   'head -c %d /dev/urandom > %s' % (self.base_bytes, BASE_FILE))
        try:
            repository, tag = self.base_image.rsplit(':', 1)
            builder.commit(repository=repository, tag=tag)
        finally:
            builder.remove(force=True)
        self.host.client.containers.create(
            self.base_image, name=self.container_name,
            entrypoint=['sh', '-c', 'head -c %d /dev/urandom > %s' % (self.env_bytes, ENV_FILE)],
            labels={LABEL_MANAGED: 'true', LABEL_ENV: self.env})
        self.new_env_layer()

    def new_env_layer(self):
        """Run the environment container once more: its layer gets env_bytes of new random data (a new version)."""
        container = self.host.client.containers.get(self.container_name)
        container.start()
        status = container.wait(timeout=1800)
        if status.get('StatusCode') != 0:
            raise RuntimeError('%s failed: %s' % (self.container_name, container.logs()[-2000:]))


def remove_env_images(daemon, env):
    """Every image of environment env on daemon (tagged kohakuriver/<env> or labelled with env), by ID, forced."""
    removed = []
    for image in daemon.client.api.images(all=True, filters={'label': '%s=%s' % (LABEL_ENV, env)}):
        removed += [image['Id']] if daemon.remove_image(image['Id']) else []
    for image in daemon.client.api.images(name='kohakuriver/' + env):
        removed += [image['Id']] if daemon.remove_image(image['Id']) else []
    return removed


def cleanup(host, daemons, run_id=None, work_dirs=()):
    """Remove what benchmark runs made: run_id's, or with run_id None every krbench-* leftover. Returns what went."""
    gone = []
    pattern = PREFIX + (run_id or '')
    for container in host.client.containers.list(all=True):
        name = container.name
        if name.startswith(pattern) or name.startswith('kohakuriver-env-' + pattern):
            container.remove(force=True)
            gone.append('container %s on %s' % (name, host.name))
    for daemon in [host] + [d for d in daemons if d is not host]:
        try:
            images = daemon.client.api.images(all=True)
        except (APIError, docker.errors.DockerException):
            continue
        for image in images:
            tags = [tag for tag in image.get('RepoTags') or [] if tag != '<none>:<none>']
            labels = image.get('Labels') or {}
            ours = any(tag.startswith(pattern) or tag.startswith('kohakuriver/' + pattern) for tag in tags) \
                or labels.get(LABEL_ENV, '').startswith(pattern)
            if ours and daemon.remove_image(image['Id']):
                gone.append('image %s %s on %s' % (image['Id'][7:19], ','.join(tags), daemon.name))
    for path in work_dirs:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            gone.append('folder %s' % path)
    return gone
