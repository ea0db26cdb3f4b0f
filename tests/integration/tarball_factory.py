"""Tarballs made the way the sidecar contract says, for runner tests, without the tarball module.

commit (labelled io.kohakuriver.docker.timestamp=<ts>, tagged kohakuriver/<env>:base) -> docker save to a hidden
temporary file -> index the members with Python's tarfile (independent of module_utils/archive_indexer.py) -> sidecar
published first -> tarball renamed to <env>-<ts>.tar. `kohakuriver_style=True` makes what KohakuRiver makes:
a plain `docker save` of the image by ID (no RepoTags), no label, no sidecar.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import tarfile
import time
import uuid

import docker

BUSYBOX = 'kohakuriver-test/busybox:latest'
LABEL_TIMESTAMP = 'io.kohakuriver.docker.timestamp'
LABEL_MANAGED = 'io.kohakuriver.docker.managed'
LABEL_ENV = 'io.kohakuriver.docker.env'
CHUNK = 2 * 1024 * 1024


class TarballFactory(object):
    """Makes tarballs of one engine's images into one folder; cleanup() removes the images it committed."""

    def __init__(self, docker_host, tarball_dir, base_image=None, runnable=False):
        """runnable: the images get the base's (empty) entrypoint, as packaging gives them, so that `docker run IMAGE
        CMD` runs CMD; otherwise they keep the factory container's."""
        self.runnable = runnable
        self.client = docker.DockerClient(base_url=docker_host, version='auto', timeout=300)
        self.tarball_dir = str(tarball_dir)
        self.base_image = base_image or self._default_base()
        self.images = []
        self._last_timestamp = 0

    def _default_base(self):
        for name in (BUSYBOX, '127.0.0.1:5000/' + BUSYBOX):
            try:
                self.client.images.get(name)
                return name
            except docker.errors.ImageNotFound:
                continue
        return '127.0.0.1:5000/' + BUSYBOX

    def next_timestamp(self, env):
        newest = max([int(name[len(env) + 1:-4]) for name in os.listdir(self.tarball_dir)
                      if name.startswith(env + '-') and name.endswith('.tar') and name[len(env) + 1:-4].isdigit()] or [0])
        timestamp = max(int(time.time()), newest + 1, self._last_timestamp + 1)
        self._last_timestamp = timestamp
        return timestamp

    def commit(self, env, timestamp, random_bytes=0, label=True, tag=True):
        """An image of env: the base plus a file naming this version, and random_bytes of incompressible data."""
        script = 'echo %s-%d-%s > /kr-version' % (env, timestamp, uuid.uuid4().hex)
        if random_bytes:
            script += ' && head -c %d /dev/urandom > /kr-payload' % random_bytes
        options = dict(entrypoint=['sh', '-c', script], name='%s-factory-%d' % (env, timestamp),
                       labels={LABEL_MANAGED: 'true', LABEL_ENV: env})
        try:
            container = self.client.containers.create(self.base_image, **options)
        except docker.errors.ImageNotFound:
            # The test bed's registry image, untagged meanwhile on the Host (the last host_images session to end
            # untags what it pulled): pulled again, as the factory fixture pulls it when missing.
            if not self.base_image.startswith('127.0.0.1:5000/'):
                raise
            self.client.images.pull(self.base_image)
            container = self.client.containers.create(self.base_image, **options)
        try:
            container.start()
            status = container.wait(timeout=600)
            if status.get('StatusCode') != 0:
                raise RuntimeError('factory container for %s failed: %s' % (env, container.logs()))
            conf = {'Labels': {LABEL_TIMESTAMP: str(timestamp)}} if label else None
            if self.runnable:
                conf = dict(conf or {}, Entrypoint=[], Cmd=['sh'])
            image = container.commit(repository='kohakuriver/%s' % env if tag else None,
                                     tag='base' if tag else None, conf=conf)
        finally:
            container.remove(force=True)
        self.images.append(image.id)
        return image

    def shared_base(self, env, random_bytes):
        """Base the next versions on a new image: the base plus random_bytes (the big layer versions share)."""
        self.base_image = self.commit(env, self.next_timestamp(env), random_bytes, label=False, tag=False).id
        return self.base_image

    def unique_base(self, env):
        """Base the next versions on an image whose only layer no daemon holds (busybox's files and a unique one),
        so that a runner lacks every layer of them and loads the whole tarball."""
        container = self.client.containers.create(self.base_image, entrypoint=['sh', '-c', 'echo %s > /kr-unique'
                                                                               % uuid.uuid4().hex],
                                                  name='%s-factory-base' % env, labels={LABEL_MANAGED: 'true', LABEL_ENV: env})
        try:
            container.start()
            container.wait(timeout=600)
            rootfs = b''.join(container.export(chunk_size=CHUNK))
        finally:
            container.remove(force=True)
        imported = self.client.api.import_image_from_data(rootfs, changes=['ENTRYPOINT ["sh"]'])
        image_id = json.loads(imported.strip().splitlines()[-1])['status']
        self.images.append(image_id)
        self.base_image = image_id
        return image_id

    def make(self, env, random_bytes=0, kohakuriver_style=False, timestamp=None):
        """Commit and save a new version of env; return the tarball path (its sidecar beside it unless KR style)."""
        timestamp = timestamp or self.next_timestamp(env)
        image = self.commit(env, timestamp, random_bytes, label=not kohakuriver_style)
        final = os.path.join(self.tarball_dir, '%s-%d.tar' % (env, timestamp))
        temp = os.path.join(self.tarball_dir, '.%s-%d.tar.%d.factory' % (env, timestamp, os.getpid()))
        # By reference the archive carries RepoTags kohakuriver/<env>:base; by ID (KohakuRiver) it carries none.
        name = image.id if kohakuriver_style else 'kohakuriver/%s:base' % env
        digest = hashlib.sha256()
        size = 0
        with open(temp, 'wb') as handle:
            for chunk in self.client.api.get_image(name, chunk_size=CHUNK):
                handle.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        if not kohakuriver_style:
            sidecar = dict(index_archive(temp), format='kohakuriver.docker/tarball-v1', env=env, timestamp=timestamp,
                           file=os.path.basename(final), size=size, sha256=digest.hexdigest(),
                           source={'container': 'kohakuriver-env-%s' % env, 'container_id': None,
                                   'host': socket.gethostname()},
                           engine={'version': self.client.version()['Version'],
                                   'api_version': self.client.api.api_version},
                           created=time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()))
            if sidecar['image_id'] != image.id:
                raise RuntimeError('archive config %s is not image %s' % (sidecar['image_id'], image.id))
            write_sidecar(final, sidecar)
        os.rename(temp, final)
        return final

    def cleanup(self):
        for image_id in reversed(self.images):
            try:
                self.client.images.remove(image_id, force=True)
            except docker.errors.NotFound:
                pass
        self.client.close()


def index_archive(path):
    """The archive fields of the sidecar: members (offset, size, sha256), config, layers, archive format."""
    members = []
    with tarfile.open(path, 'r:') as archive:
        names = archive.getnames()
        for info in archive:
            if not info.isreg():
                continue
            digest = hashlib.sha256()
            source = archive.extractfile(info)
            for chunk in iter(lambda: source.read(CHUNK), b''):
                digest.update(chunk)
            members.append({'name': info.name, 'offset': info.offset_data, 'size': info.size,
                            'sha256': digest.hexdigest()})
        manifest = json.load(archive.extractfile('manifest.json'))[0]
        config = archive.extractfile(manifest['Config']).read()
    return {
        'image_id': 'sha256:' + hashlib.sha256(config).hexdigest(),
        'repo_tags': manifest.get('RepoTags') or [],
        'archive_format': 'oci' if 'oci-layout' in names else 'docker-legacy',
        'config': manifest['Config'],
        'layers': json.loads(config)['rootfs']['diff_ids'],
        'layer_members': manifest['Layers'],
        'members': members,
    }


def write_sidecar(tarball_path, sidecar):
    temp = os.path.join(os.path.dirname(tarball_path), '.%s.json.tmp' % os.path.basename(tarball_path))
    with open(temp, 'w') as handle:
        json.dump(sidecar, handle, indent=1, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temp, 0o644)
    os.rename(temp, tarball_path + '.json')


def read_sidecar(tarball_path):
    with open(tarball_path + '.json') as handle:
        return json.load(handle)


def truncate(tarball_path, keep_bytes):
    with open(tarball_path, 'r+b') as handle:
        handle.truncate(keep_bytes)


def flip_byte(tarball_path, offset):
    """Change one byte in place: same size, different sha256."""
    with open(tarball_path, 'r+b') as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
