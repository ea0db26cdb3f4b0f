"""Tarballs of the synthetic environment for the sync scenarios, made by the tarball module.

Until kohakuriver.docker.tarball exists, `make_without_module` writes the same thing the sidecar contract
describes (commit labelled with the timestamp, tagged kohakuriver/<env>:base, docker save, sidecar from
module_utils/archive.py published before the tarball), so the sync scenarios can run before packaging lands.
"""

from __future__ import annotations

import datetime
import os
import time

from krbench import measure
from krbench.docker_state import LABEL_ENV, LABEL_TIMESTAMP


def make(host, images, tarball_dir, keep=2):
    """A new tarball of the environment container in tarball_dir; returns (path, sidecar dict)."""
    if measure.module_exists('tarball'):
        sample = measure.run_module('tarball', dict(name=images.env, tarball_dir=tarball_dir, keep=keep, force=True,
                                                    docker_host=host.docker_host, timeout=1800))
        path = sample.result['tarball']['path']
    else:
        path = make_without_module(host, images, tarball_dir)
    from ansible_collections.kohakuriver.docker.plugins.module_utils import store  # pylint: disable=import-outside-toplevel,import-error
    return path, store.read_sidecar(path)


def make_without_module(host, images, tarball_dir):
    from ansible_collections.kohakuriver.docker.plugins.module_utils import archive, store  # pylint: disable=import-outside-toplevel,import-error
    os.makedirs(tarball_dir, exist_ok=True)
    newest = store.newest_tarball(tarball_dir, images.env)
    timestamp = store.choose_timestamp(time.time(), newest.timestamp if newest else None)
    store.wait_until(timestamp)
    container = host.client.containers.get(images.container_name)
    image = container.commit(repository=images.repository, tag='base',
                             changes=['LABEL %s=%d' % (LABEL_TIMESTAMP, timestamp), 'LABEL %s=%s' % (LABEL_ENV, images.env)])
    final = os.path.join(tarball_dir, '%s-%d.tar' % (images.env, timestamp))
    temp, fd = store.create_temp(final)
    try:
        store.write_stream(host.client.api.get_image(images.repository + ':base', chunk_size=4 << 20), fd, temp)
        store.seal(fd, temp, 0o644)
        fd = None
        described, sha256, size = archive.index_file(temp)
        sidecar = dict(format=store.SIDECAR_FORMAT, env=images.env, timestamp=timestamp, file=os.path.basename(final),
                       size=size, sha256=sha256, source=dict(container=images.container_name, container_id=container.id,
                                                             host=host.name),
                       engine=dict(version=host.version, api_version=host.api_version),
                       created=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'))
        sidecar.update(described)
        if sidecar['image_id'] != image.id:
            raise RuntimeError('saved %s, committed %s' % (sidecar['image_id'], image.id))
        store.publish(temp, final, sidecar, 0o644)
    finally:
        if fd is not None:
            os.close(fd)
        store.remove_quietly(temp)
    return final
