# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The docker-save archive format: one image, legacy layout (<id>/layer.tar, <hex>.json) or OCI (blobs/sha256/<hex>).

manifest.json names the image's config and its layer members, bottom first; links stand for repeated layers. The
image ID is the sha256 of the config, whose rootfs.diff_ids are the layers' digests. The rules every reader shares
live here: member names (normalize_name), links (link_target, resolve), manifest.json and index.json
(manifest_entry, strip_manifest_tags, strip_index_names), the config (diff_ids_of, config_image_id) and the one error
type, CorruptArchive. Two readers use them:
- ImageArchive: a tarball on disk, walked by its tar headers (seeking over the data) and checked against its sidecar;
  loadstream.py makes the streams image_sync loads from it.
- archive_indexer.ArchiveIndexer: the stream `docker save` sends, indexed as the tarball module writes it to disk.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tarfile

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = b'\0' * (2 * BLOCK)
MANIFEST = 'manifest.json'
OCI_INDEX = 'index.json'
OCI_LAYOUT = 'oci-layout'
LEGACY_REPOSITORIES = 'repositories'
FORMAT_LEGACY = 'docker-legacy'
FORMAT_OCI = 'oci'
NAME_ANNOTATIONS = ('io.containerd.image.name', 'org.opencontainers.image.ref.name')
METADATA_LIMIT = 16 * 1024 * 1024  # pax headers, GNU long names, manifest.json, index.json and the config stay below
BLOB = re.compile(r'^blobs/sha256/(?P<hex>[0-9a-f]{64})$')
DIGEST = re.compile(r'^sha256:(?P<hex>[0-9a-f]{64})$')
LINK_DEPTH = 16


class CorruptArchive(Failure):
    """The file is not the docker save archive it should be. cause: what is wrong; where: the file, when known."""

    def __init__(self, cause, where=None, template='Corrupt archive %s: %s.', **result):
        super(CorruptArchive, self).__init__(cause if where is None else template % (where, cause), **result)
        self.cause = cause
        self.where = where


def normalize_name(name):
    while name.startswith('./'):
        name = name[2:]
    return name.rstrip('/')


def link_target(name, target, symbolic):
    """The member a link named name leads to: a symbolic link's target is relative to its folder."""
    if symbolic:
        target = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    return normalize_name(target)


def resolve(name, files, links, what):
    """The value files holds for the member manifest.json calls name, following links (docker save links repeats)."""
    if not isinstance(name, str) or not name:
        raise CorruptArchive('manifest.json names no %s' % what)
    current = normalize_name(name)
    for _depth in range(LINK_DEPTH):
        if current in files:
            return files[current]
        if current not in links:
            break
        current = links[current]
    raise CorruptArchive('manifest.json names the %s %s, which the archive does not hold' % (what, name))


def manifest_entry(data):
    """The single image entry of manifest.json (bytes), with its Config and Layers."""
    try:
        manifest = json.loads(data.decode('utf-8'))
    except ValueError as exc:
        raise CorruptArchive('manifest.json is not JSON (%s)' % exc)
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        raise CorruptArchive('manifest.json must describe exactly one image')
    entry = manifest[0]
    if not isinstance(entry.get('Config'), str) or not isinstance(entry.get('Layers'), list):
        raise CorruptArchive('manifest.json has no Config or Layers')
    return entry


def strip_manifest_tags(data):
    """manifest.json bytes -> (the same manifest without RepoTags, its single entry)."""
    entry = manifest_entry(data)
    stripped = dict(entry, RepoTags=None)
    return json.dumps([stripped], separators=(',', ':')).encode('utf-8'), stripped


def strip_index_names(data):
    """index.json bytes -> the same index without the annotations engines derive image names from."""
    try:
        index = json.loads(data.decode('utf-8'))
    except ValueError as exc:
        raise CorruptArchive('index.json is not JSON (%s)' % exc)
    for descriptor in index.get('manifests') or []:
        annotations = descriptor.get('annotations')
        if isinstance(annotations, dict):
            for key in NAME_ANNOTATIONS:
                annotations.pop(key, None)
            if not annotations:
                del descriptor['annotations']
    return json.dumps(index, separators=(',', ':')).encode('utf-8')


def config_image_id(config):
    """The image ID of the config bytes: their sha256, on every engine."""
    return 'sha256:' + hashlib.sha256(config).hexdigest()


def image_id_of_config_member(name):
    """The image ID a config member name encodes: '<hex>.json' (legacy) or 'blobs/sha256/<hex>' (OCI), else None."""
    base = name.rsplit('/', 1)[-1]
    if base.endswith('.json'):
        base = base[:-len('.json')]
    if len(base) == 64 and all(c in '0123456789abcdef' for c in base):
        return 'sha256:' + base
    return None


def parse_config(data, name):
    """The image config (bytes of member name) as a dict, and its rootfs.diff_ids as strings, bottom first."""
    try:
        config = json.loads(data.decode('utf-8'))
        return config, [str(diff_id) for diff_id in config['rootfs']['diff_ids']]
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptArchive('the config %s has no rootfs.diff_ids (%s)' % (name, exc))


def check_layer_count(layer_members, diff_ids):
    if len(layer_members) != len(diff_ids):
        raise CorruptArchive('manifest.json lists %d layers, the config %d' % (len(layer_members), len(diff_ids)))


def created_from(config):
    """The image the image's container was created from, as its config names it (docker commit records it), or None."""
    for key in ('config', 'container_config'):
        section = config.get(key)
        if isinstance(section, dict) and isinstance(section.get('Image'), str) and section['Image']:
            return section['Image']
    return None


def read_at(handle, offset, size):
    handle.seek(offset)
    data = handle.read(size)
    while len(data) < size:
        more = handle.read(size - len(data))
        if not more:
            raise CorruptArchive('unexpected end of data at byte %d' % (offset + len(data)))
        data += more
    return data


class ImageArchive(object):
    """A docker save archive on disk, walked and checked against its sidecar (a sidecar.Sidecar, or None).

    Problems raise a Failure 'Cannot load <path>: <cause>.' (a CorruptArchive unless the file cannot be read), here
    or while a stream of loadstream.py is iterated; its `cause` attribute holds the cause alone.
    """

    def __init__(self, path, sidecar=None):
        self.path = path
        self.sidecar = sidecar
        self._expected = None
        if sidecar is not None:
            self._expected = dict((member.name, member) for member in sidecar.members)
        try:
            with open(path, 'rb', buffering=0) as handle:
                self.size = os.fstat(handle.fileno()).st_size
                self._check_size()
                self.members, self.end = self._walk(handle)
                self._check_layout()
                self.by_name = dict((info.name, info) for info in self.members)
                self._read_image(handle)
        except (OSError, EOFError, tarfile.TarError, CorruptArchive) as exc:
            raise self.failure(exc)

    def failure(self, cause):
        """The Failure 'Cannot load <path>: <cause>.' for an exception or a message."""
        if isinstance(cause, CorruptArchive):
            if cause.where is not None:
                return cause
            cause = cause.cause
        if isinstance(cause, OSError):
            cause = cause.strerror or ' '.join(str(cause).split()) or type(cause).__name__
            failure = Failure('Cannot load %s: %s.' % (self.path, cause), tarball=self.path)
            failure.cause = cause
            return failure
        if not isinstance(cause, str):
            cause = ' '.join(str(cause).split()) or type(cause).__name__
        return CorruptArchive(cause, self.path, 'Cannot load %s: %s.', tarball=self.path)

    def _check_size(self):
        expected = self.sidecar.size if self.sidecar is not None else None
        if expected is not None and self.size != expected:
            raise CorruptArchive('it is %d bytes, its sidecar says %d (%s)' % (
                self.size, expected, 'truncated' if self.size < expected else 'not the file the sidecar describes'))

    def _walk(self, handle):
        """Every member's TarInfo (offset: its first header block, offset_data: its data) and where the end blocks are."""
        archive = tarfile.open(fileobj=handle, mode='r:')
        members = []
        for info in archive:
            if info.issparse() or not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                raise CorruptArchive('member %s is of a type docker save never writes' % info.name)
            info.name = normalize_name(info.name)
            members.append(info)
        end = archive.offset  # tarfile stops quietly at a damaged or cut header: only the end blocks tell
        if self.size - end < len(END_OF_ARCHIVE):
            raise CorruptArchive('it ends without the end-of-archive blocks (truncated after %d bytes)' % self.size)
        if read_at(handle, end, len(END_OF_ARCHIVE)) != END_OF_ARCHIVE:
            raise CorruptArchive('it has a damaged tar header at byte %d' % end)
        return members, end

    def _check_layout(self):
        if self.sidecar is None:
            return
        listed = self.sidecar.members
        files = [info for info in self.members if info.isreg()]
        for info, member in zip(files, listed):
            if member.layout != (info.name, info.offset_data, info.size):
                raise CorruptArchive('member %s (offset %d, %d bytes) differs from its sidecar entry %s (offset %s, '
                                     '%s bytes)' % ((info.name, info.offset_data, info.size) + member.layout))
        if len(files) != len(listed):
            raise CorruptArchive('it has %d files, its sidecar lists %d' % (len(files), len(listed)))

    def _read_image(self, handle):
        self.manifest_info = self.by_name.get(MANIFEST)
        if self.manifest_info is None or not self.manifest_info.isreg():
            raise CorruptArchive('it has no manifest.json, so it is not a docker save archive (or it is truncated)')
        self.manifest_original = self.read_member(handle, self.manifest_info)
        self.manifest, self.manifest_entry = strip_manifest_tags(self.manifest_original)
        files = dict((info.name, info) for info in self.members if info.isreg())
        links = dict((info.name, link_target(info.name, info.linkname, info.issym()))
                     for info in self.members if info.issym() or info.islnk())
        self.config_info = resolve(self.manifest_entry['Config'], files, links, 'config')
        self.config = self.read_member(handle, self.config_info)
        self.image_id = config_image_id(self.config)
        named = image_id_of_config_member(self.config_info.name)
        expected = self.sidecar.image_id if self.sidecar is not None else None
        if named not in (None, self.image_id) or expected not in (None, self.image_id):
            raise CorruptArchive('its config %s is image %s, %s' % (
                self.config_info.name, self.image_id, 'its sidecar says %s' % expected if expected else 'not its name'))
        config, self.diff_ids = parse_config(self.config, self.config_info.name)
        recorded = self.sidecar.layers if self.sidecar is not None else None
        if recorded is not None and recorded != self.diff_ids:
            differs = [(ours, theirs) for ours, theirs in zip(self.diff_ids, recorded) if ours != theirs]
            raise CorruptArchive('its config %s lists %d layers, its sidecar %d%s' % (
                self.config_info.name, len(self.diff_ids), len(recorded),
                ' (the first that differs: %s, the sidecar says %s)' % differs[0] if differs else ''))
        self.layer_names = [normalize_name(str(name)) for name in self.manifest_entry['Layers']]
        check_layer_count(self.layer_names, self.diff_ids)
        self.layer_infos = [resolve(name, files, links, 'layer') for name in self.layer_names]
        self.parent_image = created_from(config)

    def read_member(self, handle, info):
        """The checked bytes of a small member (metadata)."""
        if info.size > METADATA_LIMIT:
            raise CorruptArchive('member %s is %d bytes, too large for image metadata' % (info.name, info.size))
        data = read_at(handle, info.offset_data, info.size)
        self.check_member(info, hashlib.sha256(data))
        return data

    def check_member(self, info, digest):
        """Raise unless the member's sha256 matches its sidecar entry and, for a blob, its name."""
        actual = digest.hexdigest()
        if self._expected is not None and actual != getattr(self._expected.get(info.name), 'sha256', None):
            raise CorruptArchive('the sha256 of member %s does not match its sidecar' % info.name)
        blob = BLOB.match(info.name)
        if blob and blob.group('hex') != actual:
            raise CorruptArchive('the sha256 of member %s does not match its name' % info.name)
