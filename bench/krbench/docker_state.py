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
    image_store: str = None  # 'containerd' or 'graphdriver' (the test bed's state.json); None: asked of the daemon

    @functools.cached_property
    def client(self):
        return docker.DockerClient(base_url=self.docker_host, version='auto', timeout=1800)

    @property
    def label(self):
        return '%s (Docker %s%s)' % (self.name, self.version.split('+')[0], ', containerd image store' if self.containerd_store else '')

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

    @property
    def containerd_store(self):
        """Does this daemon keep its images in containerd (Docker 26 with the containerd snapshotter, Docker 29)?"""
        if self.image_store is None:
            info = self.client.info()
            self.image_store = 'containerd' if _identity().uses_containerd_store(info) else 'graphdriver'
        return self.image_store == 'containerd'

    def ids_of(self, sidecar):
        """The IDs the image a sidecar describes may have here: its config digest on the classic image store; on the
        containerd store the digests of its manifest (the collection's image_identity.sidecar_image_ids)."""
        ids = _identity().sidecar_image_ids(sidecar)
        return ids[1:] if self.containerd_store else ids[:1]

    def id_of(self, sidecar):
        """The ID this daemon gives the image a sidecar describes, None when it does not hold it."""
        return next((image_id for image_id in self.ids_of(sidecar) if self.has_image(image_id)), None)

    def holds(self, sidecar):
        return self.id_of(sidecar) is not None

    def tag_image_of(self, sidecar, repository, tag):
        """Tag the image a sidecar describes, which this daemon must hold."""
        image_id = self.id_of(sidecar)
        if image_id is None:
            raise RuntimeError('%s does not hold image %s' % (self.name, sidecar.image_id))
        self.tag(image_id, repository, tag)

    def remove_image_of(self, sidecar):
        """Remove the image a sidecar describes and all its tags; a missing one is fine."""
        image_id = self.id_of(sidecar)
        return self.remove_image(image_id) if image_id else False

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


def _identity():
    """The measured collection's image_identity (importable once measure has chosen the collection)."""
    # pylint: disable-next=import-outside-toplevel,import-error
    from ansible_collections.kohakuriver.docker.plugins.module_utils import image_identity
    return image_identity


def testbed_state():
    try:
        with open(TESTBED_STATE, encoding='utf-8') as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise SystemExit('The test bed is not up (no %s): run python3 tests/testbed/testbed.py up' % TESTBED_STATE)


def daemon_of(node):
    return Daemon(node['name'], node['docker_host'], node['engine_version'], node['api_version'], node.get('image_store'))


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
    ids = [image['Id'] for image in daemon.client.api.images(all=True, filters={'label': '%s=%s' % (LABEL_ENV, env)})]
    ids += [image['Id'] for image in daemon.client.api.images(name='kohakuriver/' + env)]
    return remove_images(daemon, ids)


def remove_images(daemon, ids):
    """Remove the images ids (forced), children before their parents: a committed chain (layout chain) is a line of
    parent and child images, and the daemon refuses to remove a parent while a child is there (409 "image has
    dependent child images"). Returns the IDs removed; one still refused after every other went raises."""
    pending, removed = list(dict.fromkeys(ids)), []
    while pending:
        refused = []
        for image_id in pending:
            try:
                removed += [image_id] if daemon.remove_image(image_id) else []
            except APIError as exc:
                if exc.status_code != 409:
                    raise
                refused.append((image_id, exc))
        if len(refused) == len(pending):
            raise refused[0][1]
        pending = [image_id for image_id, dummy in refused]
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
        ours = {}
        for image in images:
            tags = [tag for tag in image.get('RepoTags') or [] if tag != '<none>:<none>']
            labels = image.get('Labels') or {}
            if any(tag.startswith(pattern) or tag.startswith('kohakuriver/' + pattern) for tag in tags) \
                    or labels.get(LABEL_ENV, '').startswith(pattern):
                ours[image['Id']] = tags
        try:
            removed = remove_images(daemon, list(ours))
        except APIError as exc:
            gone.append('NOT every image on %s: %s' % (daemon.name, exc))
            continue
        for image_id in removed:
            gone.append('image %s %s on %s' % (image_id[7:19], ','.join(ours[image_id]), daemon.name))
    for path in work_dirs:
        if os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            gone.append('folder %s' % path)
    return gone
