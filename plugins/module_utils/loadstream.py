# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The byte stream sent to the daemon's image load endpoint, built from a tarball read once, front to back.

The stream is the tarball re-emitted member by member with fresh tar headers, except that:
- manifest.json carries no RepoTags and `repositories` is left out, so the daemon tags nothing on load
  (the caller tags `kohakuriver/<env>:base` only after the loaded image ID checks out);
- index.json (OCI layout, Docker 25+) loses its image-name annotations, for engines that name images from it;
- with a sidecar, every member's sha256, offset and size and the whole file's sha256 and size are checked
  on the way, and the stream withholds its last byte until the check covering it has passed: a failed
  check aborts the HTTP body mid-member, the daemon's untar fails, and nothing is loaded.

Issue 6's thin load fits here: the sidecar's member offsets let a second producer seek to the config,
manifest and missing layers only and feed them through the same `_emit` and manifest rewrite.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import tarfile

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

CHUNK_SIZE = 2 * 1024 * 1024
BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = b'\0' * (2 * BLOCK)
MANIFEST = 'manifest.json'
OCI_INDEX = 'index.json'
LEGACY_REPOSITORIES = 'repositories'
NAME_ANNOTATIONS = ('io.containerd.image.name', 'org.opencontainers.image.ref.name')
SMALL_MEMBER_LIMIT = 16 * 1024 * 1024


class _HashingReader(object):
    """A file read front to back, hashing and counting every byte that passes."""

    def __init__(self, handle):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.count = 0

    def read(self, size=-1):
        data = self.handle.read(size)
        self.digest.update(data)
        self.count += len(data)
        return data

    def drain(self, chunk_size=CHUNK_SIZE):
        while self.read(chunk_size):
            pass


def strip_manifest_tags(data):
    """manifest.json bytes -> (the same manifest without RepoTags, its single entry). One image per tarball."""
    try:
        manifest = json.loads(data.decode('utf-8'))
    except ValueError as exc:
        raise ValueError('manifest.json is not JSON (%s)' % exc)
    if not isinstance(manifest, list) or len(manifest) != 1 or not isinstance(manifest[0], dict):
        raise ValueError('manifest.json must describe exactly one image')
    entry = manifest[0]
    if not isinstance(entry.get('Config'), str) or not isinstance(entry.get('Layers'), list):
        raise ValueError('manifest.json has no Config or Layers')
    entry['RepoTags'] = None
    return json.dumps(manifest, separators=(',', ':')).encode('utf-8'), entry


def strip_index_names(data):
    """index.json bytes -> the same index without the annotations engines derive image names from."""
    try:
        index = json.loads(data.decode('utf-8'))
    except ValueError as exc:
        raise ValueError('index.json is not JSON (%s)' % exc)
    for descriptor in index.get('manifests') or []:
        annotations = descriptor.get('annotations')
        if isinstance(annotations, dict):
            for key in NAME_ANNOTATIONS:
                annotations.pop(key, None)
            if not annotations:
                del descriptor['annotations']
    return json.dumps(index, separators=(',', ':')).encode('utf-8')


def image_id_of_config_member(name):
    """The image ID a config member name encodes: '<hex>.json' (legacy) or 'blobs/sha256/<hex>' (OCI)."""
    base = name.rsplit('/', 1)[-1]
    if base.endswith('.json'):
        base = base[:-len('.json')]
    if len(base) == 64 and all(c in '0123456789abcdef' for c in base):
        return 'sha256:' + base
    return None


def _padding(size):
    return b'\0' * ((BLOCK - size % BLOCK) % BLOCK)


def _header(info, size=None):
    if size is not None:
        info = copy.copy(info)
        info.size = size
    return info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')


def _withhold_last_byte(pieces):
    """Yield the pieces' bytes one byte late: a piece is only fully out once the next one was produced."""
    held = b''
    for piece in pieces:
        if not piece:
            continue
        joined = held + piece
        held = joined[-1:]
        if len(joined) > 1:
            yield memoryview(joined)[:-1]
    if held:
        yield held


class LoadStream(object):
    """Iterate it for the bytes to POST to /images/load; afterwards it tells what it read and checked.

    Failures raised while iterating are `Failure`s naming the file, so they pass through the HTTP client
    unchanged (which then drops the connection mid-body).
    """

    def __init__(self, path, sidecar=None, chunk_size=CHUNK_SIZE):
        self.path = path
        self.sidecar = sidecar
        self.chunk_size = chunk_size
        self.bytes_read = 0
        self.image_id = None
        self.manifest_entry = None
        self.complete = False
        self._expected = None
        self._padding_due = b''
        if sidecar is not None:
            self._expected = list(sidecar.get('members') or [])

    @property
    def verified(self):
        return self.complete and self.sidecar is not None

    def __iter__(self):
        return _withhold_last_byte(self._pieces())

    def _fail(self, cause):
        return Failure('Cannot load %s: %s.' % (self.path, cause), tarball=self.path)

    def _pieces(self):
        if self.sidecar is not None:
            self._check_size()
        try:
            with open(self.path, 'rb') as handle:
                reader = _HashingReader(handle)
                try:
                    yield from self._archive_pieces(reader)
                finally:
                    self.bytes_read = reader.count
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise self._fail(' '.join(str(exc).split()) or type(exc).__name__)
        self.complete = True
        yield self._padding_due + END_OF_ARCHIVE

    def _check_size(self):
        try:
            size = os.stat(self.path).st_size
        except OSError as exc:
            raise self._fail(exc.strerror)
        expected = self.sidecar.get('size')
        if expected is not None and size != expected:
            raise self._fail('it is %d bytes, its sidecar says %d (%s)'
                             % (size, expected, 'truncated' if size < expected else 'not the file the sidecar describes'))

    def _archive_pieces(self, reader):
        archive = tarfile.open(fileobj=reader, mode='r|', bufsize=self.chunk_size)
        position = 0
        last_end = 0
        saw_manifest = False
        for info in archive:
            if info.isreg():
                last_end = info.offset_data + info.size + len(_padding(info.size))
                check = self._member_check(position, info)
                position += 1
                if info.name == MANIFEST:
                    saw_manifest = True
                    data = self._rewritten(archive, info, check, self._rewrite_manifest)
                    pieces = self._emit(info, len(data), [data])
                elif info.name == OCI_INDEX:
                    data = self._rewritten(archive, info, check, strip_index_names)
                    pieces = self._emit(info, len(data), [data])
                elif info.name == LEGACY_REPOSITORIES:
                    self._read_checked(archive, info, check)
                    continue
                else:
                    pieces = self._emit(info, info.size, self._checked_data(archive, info, check))
                yield from pieces
            elif info.isdir() or info.issym() or info.islnk():
                last_end = info.offset_data
                yield from self._emit(info, 0, [])
            else:
                raise tarfile.TarError('member %s is of a type docker save never writes' % info.name)
        reader.drain(self.chunk_size)
        if not saw_manifest:
            raise tarfile.TarError('it has no manifest.json, so it is not a docker save archive (or it is truncated)')
        if reader.count - last_end < len(END_OF_ARCHIVE):
            raise tarfile.TarError('it ends without the end-of-archive blocks (truncated after %d bytes)' % reader.count)
        if self._expected is not None:
            if position != len(self._expected):
                raise tarfile.TarError('it has %d files, its sidecar lists %d' % (position, len(self._expected)))
            actual = reader.digest.hexdigest()
            if actual != self.sidecar.get('sha256'):
                raise tarfile.TarError('its sha256 is %s, its sidecar says %s' % (actual, self.sidecar.get('sha256')))

    def _emit(self, info, size, data):
        """A member: the previous member's padding and this header, then the data. This member's padding waits for
        the next piece, so the byte withheld by _withhold_last_byte is a data (or header) byte: a stream cut there
        is refused by tar readers, while one cut inside padding is accepted by Go's archive/tar at a clean EOF."""
        yield self._padding_due + _header(info, size if info.isreg() else None)
        self._padding_due = _padding(size)
        yield from data

    def _member_check(self, position, info):
        """A function checking the member's sha256 against the sidecar, or None without a sidecar."""
        if self._expected is None:
            return None
        if position >= len(self._expected):
            raise tarfile.TarError('member %s is not listed in its sidecar' % info.name)
        expected = self._expected[position]
        if (expected.get('name'), expected.get('offset'), expected.get('size')) != (info.name, info.offset_data, info.size):
            raise tarfile.TarError('member %s (offset %d, %d bytes) differs from its sidecar entry %s (offset %s, %s bytes)'
                                   % (info.name, info.offset_data, info.size, expected.get('name'),
                                      expected.get('offset'), expected.get('size')))

        def check(digest):
            if digest.hexdigest() != expected.get('sha256'):
                raise tarfile.TarError('the sha256 of member %s does not match its sidecar' % info.name)
        return check

    def _checked_data(self, archive, info, check):
        """The member's data in chunks; its sha256 is checked before the generator ends."""
        digest = hashlib.sha256() if check else None
        source = archive.extractfile(info)
        remaining = info.size
        while remaining:
            chunk = source.read(min(self.chunk_size, remaining))
            if not chunk:
                raise tarfile.ReadError('unexpected end of data in member %s' % info.name)
            remaining -= len(chunk)
            if digest:
                digest.update(chunk)
            yield chunk
        if check:
            check(digest)

    def _read_checked(self, archive, info, check):
        if info.size > SMALL_MEMBER_LIMIT:
            raise tarfile.TarError('member %s is %d bytes, too large for an image index' % (info.name, info.size))
        data = archive.extractfile(info).read()
        if len(data) != info.size:
            raise tarfile.ReadError('unexpected end of data in member %s' % info.name)
        if check:
            check(hashlib.sha256(data))
        return data

    def _rewritten(self, archive, info, check, rewrite):
        try:
            return rewrite(self._read_checked(archive, info, check))
        except ValueError as exc:
            raise tarfile.TarError(str(exc))

    def _rewrite_manifest(self, data):
        data, entry = strip_manifest_tags(data)
        self.manifest_entry = entry
        self.image_id = image_id_of_config_member(entry['Config'])
        return data
