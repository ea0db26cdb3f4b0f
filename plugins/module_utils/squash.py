# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Squashing the layers an environment added over its base image into one, the base image's layers kept shared.

A chain grows one layer per version; overlay2 mounts at most about 125. Past max_layers, packaging squashes: the
committed image is saved (docker save, streamed to a hidden temporary file beside the tarballs), its layers above
the base image are merged into one layer tar (merge_layers: the newest version of every path, whiteouts and opaque
folders applied to the layers they hide and kept for the base image's), and an image of the base layers plus that
one is loaded back (docker load). Its config is the committed image's (runtime, labels, created) with the new
diff IDs and history, so its ID is as reproducible as any image's. Only the daemon's API is used (it works against a
remote daemon), and nothing is held in memory beyond one tar header.

Why not docker-squash (PyPI): it is a command-line tool with dependencies beyond the Docker SDK, and it unpacks the
saved image into a temporary folder (a copy of the whole image, then another for the new one) before it loads;
docker export | import would lose the base image's layers (everything in one layer, shared with nothing).
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import posixpath
import tarfile

from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.savestream import SAVE_CHUNK_SIZE

WHITEOUT = '.wh.'
OPAQUE = '.wh..wh..opq'


def _path(name):
    return posixpath.normpath('/' + name).lstrip('/')


def _ancestors(path):
    parts = path.split('/')
    return ['/'.join(parts[:index]) for index in range(1, len(parts))]


class _Hashing(object):
    """A file object that hashes and counts what is written through it."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data):
        self.digest.update(data)
        self.size += len(data)
        return self.handle.write(data)


def merge_layers(layers, output):
    """Write into output (a binary file) one layer tar equal to the layer tars layers (file objects, bottom first)
    applied in order; returns its diff ID. Whiteouts and opaque markers stay for what lies below the oldest layer."""
    hashing = _Hashing(output)
    emitted, hidden, opaque = set(), set(), set()

    def covered(path):
        return path in hidden or any(parent in hidden for parent in _ancestors(path)) \
            or any(parent in opaque for parent in _ancestors(path))

    with tarfile.open(fileobj=hashing, mode='w|', format=tarfile.PAX_FORMAT) as merged:
        for layer in reversed(layers):
            newly_hidden, newly_opaque, from_here = set(), set(), {}
            with tarfile.open(fileobj=layer, mode='r:') as inner:
                for info in inner:
                    path = _path(info.name)
                    parent, base = posixpath.split(path)
                    if base == OPAQUE:
                        if parent not in opaque and not covered(parent + '/' + OPAQUE):
                            merged.addfile(info)
                        newly_opaque.add(parent)
                        continue
                    target = posixpath.join(parent, base[len(WHITEOUT):]) if base.startswith(WHITEOUT) else path
                    if target in emitted or covered(target):
                        continue
                    if base.startswith(WHITEOUT):
                        # Hides older layers and the base, not what this layer itself puts at that path.
                        merged.addfile(info)
                        newly_hidden.add(target)
                        continue
                    emitted.add(target)
                    if not info.isdir():
                        newly_hidden.add(path)
                    if info.islnk() and _path(info.linkname) not in from_here:
                        # Its target was replaced by a newer layer: the link becomes a copy of this layer's file.
                        source = inner.getmember(info.linkname)
                        copied = copy.copy(source)
                        copied.name = info.name
                        copied.pax_headers = dict((key, value) for key, value in source.pax_headers.items()
                                                  if key not in ('path', 'linkpath'))
                        merged.addfile(copied, inner.extractfile(source))
                    else:
                        merged.addfile(info, inner.extractfile(info) if info.isreg() else None)
                    from_here[path] = True
            hidden |= newly_hidden
            opaque |= newly_opaque
    return 'sha256:' + hashing.digest.hexdigest()


def _history_of(config, shared, squashed):
    """The history entries of the first shared layers, then one for the squashed layer."""
    kept, layers = [], 0
    for entry in config.get('history') or []:
        if layers >= shared:
            break
        kept.append(entry)
        if not entry.get('empty_layer'):
            layers += 1
    kept.append(dict(created=config.get('created'), created_by='kohakuriver.docker: %d layers squashed into one' % squashed,
                     comment='max_layers'))
    return kept


def squashed_config(config, shared_layers, diff_id, squashed):
    """The config of the squashed image: config with the shared layers, then diff_id."""
    result = copy.deepcopy(config)
    result['rootfs'] = dict(type='layers', diff_ids=list(shared_layers) + [diff_id])
    result['history'] = _history_of(config, len(shared_layers), squashed)
    return json.dumps(result, sort_keys=True, separators=(',', ':')).encode('utf-8')


def _add(archive, name, size, handle):
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, 0o644, 0
    archive.addfile(info, handle)


def _save(client, image_id, path, patient):
    with open(path, 'wb') as handle:
        with patient():
            chunks = client.api.get_image(image_id, chunk_size=SAVE_CHUNK_SIZE)
            first = next(chunks, b'')
        handle.write(first)
        for chunk in chunks:
            handle.write(chunk)


def _build(saved, base_layers, merged_path, archive_path):
    """Write archive_path: the squashed image of the archive saved, its layers shared with base_layers kept."""
    with tarfile.open(saved, 'r:') as source:
        manifest = json.load(source.extractfile('manifest.json'))[0]
        config = json.loads(source.extractfile(manifest['Config']).read().decode('utf-8'))
        diff_ids = config['rootfs']['diff_ids']
        shared = 0
        while shared < min(len(diff_ids), len(base_layers)) and diff_ids[shared] == base_layers[shared]:
            shared += 1
        with open(merged_path, 'w+b') as merged:
            diff_id = merge_layers([source.extractfile(member) for member in manifest['Layers'][shared:]], merged)
            size = merged.tell()
            data = squashed_config(config, diff_ids[:shared], diff_id, len(diff_ids) - shared)
            image_hex = hashlib.sha256(data).hexdigest()
            members = ['%s/layer.tar' % layer.split(':')[1] for layer in diff_ids[:shared] + [diff_id]]
            entry = [dict(Config=image_hex + '.json', RepoTags=None, Layers=members)]
            with tarfile.open(archive_path, 'w', format=tarfile.PAX_FORMAT) as archive:
                for index in range(shared):
                    # extractfile follows a link member (a layer the archive holds twice) to its target.
                    layer = source.extractfile(manifest['Layers'][index])
                    length = layer.seek(0, io.SEEK_END)
                    layer.seek(0)
                    _add(archive, members[index], length, layer)
                merged.seek(0)
                _add(archive, members[-1], size, merged)
                _add(archive, image_hex + '.json', len(data), io.BytesIO(data))
                listing = json.dumps(entry).encode('utf-8')
                _add(archive, 'manifest.json', len(listing), io.BytesIO(listing))
    return 'sha256:' + image_hex, len(diff_ids) - shared


def squash_image(client, image_id, base_layers, final, patient):
    """Load an image of image_id's layers shared with base_layers plus one layer of all the others; its ID.

    final: the tarball path the temporary files are named after (cleaned by the next run when this one is killed);
    patient(): a context in which the daemon gets time to stage the save.
    """
    temps = []
    try:
        for _index in range(3):
            path, fd = store.create_temp(final)
            os.close(fd)
            temps.append(path)
        saved, merged, archive = temps
        _save(client, image_id, saved, patient)
        squashed_id, count = _build(saved, base_layers, merged, archive)
        store.remove_quietly(saved)
        with open(archive, 'rb') as handle:
            with patient():
                for event in client.api.load_image(handle):
                    if isinstance(event, dict) and event.get('error'):
                        raise Failure('Loading the image of %d squashed layers failed: %s' % (count, event['error']))
        if client.api.inspect_image(squashed_id)['Id'] != squashed_id:
            raise Failure('The daemon loaded the squashed image under another ID than %s.' % squashed_id)
        return squashed_id
    finally:
        for path in temps:
            store.remove_quietly(path)
