# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which image ID a tarball's image has on a daemon, on either image store.

A daemon with the classic image store (graph drivers: overlay2, ...) names an image by its config digest, the
sidecar's image_id. One with the containerd image store (Docker 26 with the containerd-snapshotter feature, Docker
29's default) names it by the digest of its manifest (API 1.45 shows no config digest at all, and cannot inspect an
image by it): for an OCI archive the manifest index.json points to, one of its blobs; for a docker-legacy archive
(Docker < 25) the manifest containerd writes on import, which is fixed by the config and the layers (uncompressed tar,
digest = diff ID) and rebuilt here byte for byte. Both are digests of content that names the config, so an image
with either ID is the tarball's image. Everything here is computed from what the sidecar (or the archive's tar
headers) lists: no tarball byte is read and no extra daemon request made.
"""

from __future__ import annotations

import hashlib
import json
import re

FORMAT_LEGACY = 'docker-legacy'
FORMAT_OCI = 'oci'
CONTAINERD_SNAPSHOTTER = 'io.containerd.snapshotter.v1'
LEGACY_MANIFEST_TYPE = 'application/vnd.docker.distribution.manifest.v2+json'
LEGACY_CONFIG_TYPE = 'application/vnd.docker.container.image.v1+json'
LEGACY_LAYER_TYPE = 'application/vnd.docker.image.rootfs.diff.tar'
OCI_INDEX_TYPE = 'application/vnd.oci.image.index.v1+json'
OCI_LAYOUT_FILE = b'{"imageLayoutVersion":"1.0.0"}'
MANIFEST_LIMIT = 4 * 1024 * 1024  # a manifest or an index blob; a layer blob of an OCI archive is larger or a diff ID
_BLOB = re.compile(r'^blobs/sha256/(?P<hex>[0-9a-f]{64})$')


def digest_of(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def uses_containerd_store(info):
    """True when a daemon's `docker info` (a dict) says it keeps images in containerd (snapshotters)."""
    for pair in info.get('DriverStatus') or []:
        if isinstance(pair, (list, tuple)) and len(pair) == 2 and pair[0] == 'driver-type' and pair[1] == CONTAINERD_SNAPSHOTTER:
            return True
    return False


def legacy_manifest(config_id, config_size, layers):
    """The manifest (bytes) containerd writes when it imports a docker-legacy archive: layers are (diff ID, size)."""
    manifest = {'schemaVersion': 2, 'mediaType': LEGACY_MANIFEST_TYPE,
                'config': {'mediaType': LEGACY_CONFIG_TYPE, 'digest': config_id, 'size': config_size},
                'layers': [{'mediaType': LEGACY_LAYER_TYPE, 'digest': digest, 'size': size} for digest, size in layers]}
    return json.dumps(manifest, separators=(',', ':')).encode('utf-8')


def oci_index(manifest_type, manifest_id, manifest_size):
    """index.json of an OCI layout with one image, named nothing (the caller tags it)."""
    index = {'schemaVersion': 2, 'mediaType': OCI_INDEX_TYPE,
             'manifests': [{'mediaType': manifest_type, 'digest': manifest_id, 'size': manifest_size}]}
    return json.dumps(index, separators=(',', ':')).encode('utf-8')


def image_ids(archive_format, config_id, config_size, layers, blobs):
    """The IDs the image may have on a daemon, config digest first.

    layers: (diff ID, size) bottom first, or None when a size is unknown; blobs: (member name, size) of every regular
    member. A docker-legacy archive adds the manifest containerd makes of it; an OCI archive its small blobs other than
    config and layers (its manifest, or an index above it), one of which is the ID on the containerd store.
    """
    found = [config_id]
    if archive_format == FORMAT_LEGACY and config_size is not None and layers is not None:
        found.append(digest_of(legacy_manifest(config_id, config_size, layers)))
    elif archive_format == FORMAT_OCI:
        layer_ids = set(digest for digest, dummy in layers or [])
        for name, size in blobs:
            match = _BLOB.match(name)
            if match and size <= MANIFEST_LIMIT and 'sha256:' + match.group('hex') not in layer_ids | {config_id}:
                found.append('sha256:' + match.group('hex'))
    return tuple(found)


def sidecar_image_ids(sidecar):
    """image_ids from a sidecar alone, or from what archive_indexer describes (a dict with the same keys): its image_id
    first; () without one."""
    if sidecar is None or not sidecar.get('image_id'):
        return ()
    members = [member for member in sidecar.get('members') or [] if isinstance(member, dict)]
    sizes = dict((member.get('name'), member.get('size')) for member in members)
    by_sha256 = dict((member.get('sha256'), member.get('size')) for member in members)
    diff_ids = sidecar.get('layers')
    layers = None
    if diff_ids is not None and all(diff_id[len('sha256:'):] in by_sha256 for diff_id in diff_ids):
        layers = [(diff_id, by_sha256[diff_id[len('sha256:'):]]) for diff_id in diff_ids]
    return image_ids(sidecar.get('archive_format'), sidecar['image_id'], sizes.get(sidecar.get('config')), layers,
                     [(member.get('name'), member.get('size')) for member in members])


def archive_image_ids(archive):
    """image_ids from an image_archive.ImageArchive (its tar headers, manifest.json and config, read already)."""
    archive_format = FORMAT_OCI if 'index.json' in archive.by_name else FORMAT_LEGACY
    layers = list(zip(archive.diff_ids, [info.size for info in archive.layer_infos]))
    return image_ids(archive_format, archive.image_id, archive.config_info.size, layers,
                     [(info.name, info.size) for info in archive.members if info.isreg()])


def matches(image, expected):
    """Is an inspected image (dict or None) the one expected: an ID, a tuple of the IDs it may have, or None (any)?"""
    if image is None:
        return False
    if expected is None:
        return True
    return image.get('Id') in ((expected,) if isinstance(expected, str) else tuple(expected))
