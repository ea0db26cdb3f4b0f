# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The byte streams sent to the daemon's image load endpoint, read straight from a tarball on disk.

ImageArchive walks the tarball's tar headers (seeking over the data), reads manifest.json and the image config, and
checks them and the layout against the sidecar. It then makes one of two streams:
- full_stream(): the tarball as it is, headers and data passed through as read, except that manifest.json carries
  no RepoTags, index.json (OCI layout) no image-name annotations and `repositories` is left out, so the daemon tags
  nothing on load (the caller tags `kohakuriver/<env>:base` only after the loaded image ID checks out). With a
  sidecar the whole file's sha256 is checked on the way: one hash of every byte, on a thread of its own so that
  sending never waits for it (a second hash per member would cost as much again, on the cores the daemon needs);
  when it differs, a second read names the member that changed.
- thin_stream(held): the layers above the `held` bottom ones, then the config and manifest.json (rewritten alike),
  each read from its offset and each layer hashed on a thread of its own. `docker load` (Docker 20.10, and 26 with
  OCI layouts) opens a layer's file only when it lacks the layer's chain ID, so the held layers are simply absent
  from the archive. Every byte sent is checked as it
  is read: against the sidecar's sha256, and a layer blob also against its name; the layers left out are checked by
  the daemon, whose chain IDs for them derive from the diff_ids of the config checked here.

Every stream withholds its last byte until the check covering it has passed: a failed check aborts the HTTP body
inside a member, the daemon's untar fails, and nothing is loaded. Both know their length in advance, so the HTTP
client sends a Content-Length and hands each piece to the socket as it is, without chunked-encoding copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import queue
import re
import tarfile
import threading

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

CHUNK_SIZE = 8 * 1024 * 1024
BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = b'\0' * (2 * BLOCK)
MANIFEST = 'manifest.json'
OCI_INDEX = 'index.json'
LEGACY_REPOSITORIES = 'repositories'
NAME_ANNOTATIONS = ('io.containerd.image.name', 'org.opencontainers.image.ref.name')
SMALL_MEMBER_LIMIT = 16 * 1024 * 1024
SMALL_PIECE = 64 * 1024
_BLOB = re.compile(r'^blobs/sha256/([0-9a-f]{64})$')
_LINK_DEPTH = 16


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
    return b'\0' * (-size % BLOCK)


def _end(info):
    """Where the member after info starts: after its data and that data's padding."""
    return info.offset_data + info.size + (-info.size % BLOCK)


def _normalize(name):
    while name.startswith('./'):
        name = name[2:]
    return name.rstrip('/')


def _created_from(config):
    """The image the image's container was created from, as its config names it (docker commit records it), or None."""
    for key in ('config', 'container_config'):
        section = config.get(key)
        if isinstance(section, dict) and isinstance(section.get('Image'), str) and section['Image']:
            return section['Image']
    return None


def _fresh_header(name, size, like):
    """A plain header for a regular file (no pax records inherited from `like`, whose mode and mtime it keeps)."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = like.mode
    info.mtime = like.mtime
    return info.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')


def _withhold_last_byte(pieces):
    """Yield the pieces' bytes one byte late: a piece is only fully out once the next one was produced.

    Large pieces are passed on as memoryview slices (no copy); small ones are joined with the held byte.
    """
    held = None
    for piece in pieces:
        if not piece:
            continue
        if held is not None and len(piece) <= SMALL_PIECE:
            piece = bytes(held) + bytes(piece)
        elif held is not None:
            yield held
        view = memoryview(piece)
        if len(view) > 1:
            yield view[:-1]
        held = view[-1:]
    if held is not None:
        yield held


def _read_at(handle, offset, size):
    handle.seek(offset)
    data = handle.read(size)
    while len(data) < size:
        more = handle.read(size - len(data))
        if not more:
            raise tarfile.ReadError('unexpected end of data at byte %d' % (offset + len(data)))
        data += more
    return data


def _read_sequentially(handle):
    """Tell the kernel to read ahead generously: the file is read front to back."""
    if hasattr(os, 'posix_fadvise'):
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)


class BackgroundDigest(object):
    """A sha256 of the bytes given to update(), in order, computed on its own thread (hashlib releases the GIL).

    At most `depth` pieces wait for the hash: the memory it holds stays bounded. hexdigest() waits for the rest;
    close() abandons the hash and ends the thread.
    """

    def __init__(self, depth=2):
        self._digest = hashlib.sha256()
        self._pieces = queue.Queue(maxsize=depth)
        self._thread = threading.Thread(target=self._hash, name='load-digest')
        self._thread.daemon = True
        self._thread.start()

    def _hash(self):
        for piece in iter(self._pieces.get, None):
            self._digest.update(piece)

    def update(self, data):
        self._pieces.put(data)

    def hexdigest(self):
        self.close()
        return self._digest.hexdigest()

    def close(self):
        if self._thread.is_alive():
            self._pieces.put(None)
            self._thread.join()


class _Reader(object):
    """An open file read in order; counts the bytes and feeds them to `whole` (a hashlib object) when given."""

    def __init__(self, handle, chunk_size, whole=None):
        self.handle = handle
        self.chunk_size = chunk_size
        self.whole = whole
        self.count = 0

    def read(self, size):
        data = _read_at(self.handle, self.handle.tell(), size) if size else b''
        self._account(data)
        return data

    def chunks(self, size):
        """The next size bytes, in pieces of at most chunk_size."""
        while size:
            data = self.handle.read(min(self.chunk_size, size))
            if not data:
                raise tarfile.ReadError('unexpected end of data at byte %d' % self.handle.tell())
            size -= len(data)
            self._account(data)
            yield data

    def drain(self):
        for _data in self.chunks(os.fstat(self.handle.fileno()).st_size - self.handle.tell()):
            pass

    def _account(self, data):
        self.count += len(data)
        if self.whole is not None:
            self.whole.update(data)


class ImageArchive(object):
    """A docker save archive on disk, walked and checked; its full_stream() or thin_stream() goes to the daemon.

    Problems raise `Failure`s naming the file, here or while a stream is iterated (they pass through the HTTP client
    unchanged, which then drops the connection mid-body).
    """

    def __init__(self, path, sidecar=None):
        self.path = path
        self.sidecar = sidecar
        self._expected = None
        if sidecar is not None:
            self._expected = dict((member.get('name'), member) for member in sidecar.get('members') or [])
        try:
            with open(path, 'rb', buffering=0) as handle:
                self.size = os.fstat(handle.fileno()).st_size
                self._check_size()
                self.members, self.end = self._walk(handle)
                self._check_layout()
                self.by_name = dict((info.name, info) for info in self.members)
                self._read_image(handle)
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise self.failure(exc)

    def failure(self, cause):
        """The Failure 'Cannot load <path>: <cause>.'; its `cause` attribute holds the cause alone."""
        if not isinstance(cause, str):
            cause = getattr(cause, 'strerror', None) or ' '.join(str(cause).split()) or type(cause).__name__
        failure = Failure('Cannot load %s: %s.' % (self.path, cause), tarball=self.path)
        failure.cause = cause
        return failure

    def _check_size(self):
        expected = self.sidecar.get('size') if self.sidecar else None
        if expected is not None and self.size != expected:
            raise self.failure('it is %d bytes, its sidecar says %d (%s)' % (
                self.size, expected, 'truncated' if self.size < expected else 'not the file the sidecar describes'))

    def _walk(self, handle):
        """Every member's TarInfo (offset: its first header block, offset_data: its data) and where the end blocks are."""
        archive = tarfile.open(fileobj=handle, mode='r:')
        members = []
        for info in archive:
            if info.issparse() or not (info.isreg() or info.isdir() or info.issym() or info.islnk()):
                raise tarfile.TarError('member %s is of a type docker save never writes' % info.name)
            info.name = _normalize(info.name)
            members.append(info)
        end = archive.offset  # tarfile stops quietly at a damaged or cut header: only the end blocks tell
        if self.size - end < len(END_OF_ARCHIVE):
            raise tarfile.TarError('it ends without the end-of-archive blocks (truncated after %d bytes)' % self.size)
        if _read_at(handle, end, len(END_OF_ARCHIVE)) != END_OF_ARCHIVE:
            raise tarfile.TarError('it has a damaged tar header at byte %d' % end)
        return members, end

    def _check_layout(self):
        if self.sidecar is None:
            return
        listed = self.sidecar.get('members') or []
        files = [info for info in self.members if info.isreg()]
        for info, member in zip(files, listed):
            if (member.get('name'), member.get('offset'), member.get('size')) != (info.name, info.offset_data, info.size):
                raise tarfile.TarError('member %s (offset %d, %d bytes) differs from its sidecar entry %s (offset %s, '
                                       '%s bytes)' % (info.name, info.offset_data, info.size, member.get('name'),
                                                      member.get('offset'), member.get('size')))
        if len(files) != len(listed):
            raise tarfile.TarError('it has %d files, its sidecar lists %d' % (len(files), len(listed)))

    def _read_image(self, handle):
        self.manifest_info = self.by_name.get(MANIFEST)
        if self.manifest_info is None or not self.manifest_info.isreg():
            raise tarfile.TarError('it has no manifest.json, so it is not a docker save archive (or it is truncated)')
        self.manifest_original = self.read_member(handle, self.manifest_info)
        try:
            self.manifest, self.manifest_entry = strip_manifest_tags(self.manifest_original)
        except ValueError as exc:
            raise tarfile.TarError(str(exc))
        self.config_info = self._resolve(self.manifest_entry['Config'], 'config')
        self.config = self.read_member(handle, self.config_info)
        self.image_id = 'sha256:' + hashlib.sha256(self.config).hexdigest()
        named = image_id_of_config_member(self.config_info.name)
        expected = self.sidecar.get('image_id') if self.sidecar else None
        if named not in (None, self.image_id) or expected not in (None, self.image_id):
            raise tarfile.TarError('its config %s is image %s, %s' % (
                self.config_info.name, self.image_id, 'its sidecar says %s' % expected if expected else 'not its name'))
        try:
            config = json.loads(self.config.decode('utf-8'))
            self.diff_ids = [str(diff_id) for diff_id in config['rootfs']['diff_ids']]
        except (ValueError, KeyError, TypeError) as exc:
            raise tarfile.TarError('its config %s has no rootfs.diff_ids (%s)' % (self.config_info.name, exc))
        if self.sidecar is not None and self.sidecar.get('layers') is not None and self.sidecar['layers'] != self.diff_ids:
            differs = [(ours, theirs) for ours, theirs in zip(self.diff_ids, self.sidecar['layers']) if ours != theirs]
            raise tarfile.TarError('its config %s lists %d layers, its sidecar %d%s' % (
                self.config_info.name, len(self.diff_ids), len(self.sidecar['layers']),
                ' (the first that differs: %s, the sidecar says %s)' % differs[0] if differs else ''))
        self.layer_names = [_normalize(str(name)) for name in self.manifest_entry['Layers']]
        if len(self.layer_names) != len(self.diff_ids):
            raise tarfile.TarError('manifest.json lists %d layers, the config %d' % (len(self.layer_names), len(self.diff_ids)))
        self.layer_infos = [self._resolve(name, 'layer') for name in self.layer_names]
        self.parent_image = _created_from(config)

    def _resolve(self, name, what):
        """The regular member holding name's data, following links (docker save links repeated layers)."""
        current = _normalize(name)
        for _depth in range(_LINK_DEPTH):
            info = self.by_name.get(current)
            if info is None:
                break
            if info.isreg():
                return info
            if info.issym():
                current = posixpath.normpath(posixpath.join(posixpath.dirname(info.name), info.linkname))
            elif info.islnk():
                current = _normalize(info.linkname)
            else:
                break
        raise tarfile.TarError('manifest.json names the %s %s, which the archive does not hold' % (what, name))

    def read_member(self, handle, info):
        if info.size > SMALL_MEMBER_LIMIT:
            raise tarfile.TarError('member %s is %d bytes, too large for image metadata' % (info.name, info.size))
        data = _read_at(handle, info.offset_data, info.size)
        self.check_member(info, hashlib.sha256(data))
        return data

    def check_member(self, info, digest):
        """Raise unless the member's sha256 matches its sidecar entry and, for a blob, its name."""
        actual = digest.hexdigest()
        if self._expected is not None and actual != self._expected[info.name].get('sha256'):
            raise tarfile.TarError('the sha256 of member %s does not match its sidecar' % info.name)
        blob = _BLOB.match(info.name)
        if blob and blob.group(1) != actual:
            raise tarfile.TarError('the sha256 of member %s does not match its name' % info.name)

    def check_every_member(self, chunk_size=CHUNK_SIZE):
        """Read every file of the archive again; raise at the first whose sha256 does not match its sidecar entry."""
        with open(self.path, 'rb', buffering=0) as handle:
            reader = _Reader(handle, chunk_size)
            for info in self.members:
                if info.isreg():
                    handle.seek(info.offset_data)
                    digest = hashlib.sha256()
                    for data in reader.chunks(info.size):
                        digest.update(data)
                    self.check_member(info, digest)

    def full_stream(self, chunk_size=CHUNK_SIZE):
        return FullStream(self, chunk_size)

    def thin_stream(self, held, chunk_size=CHUNK_SIZE):
        """The stream leaving out the bottom `held` layers, which the daemon must hold (by chain ID)."""
        return ThinStream(self, held, chunk_size)


class LoadStream(object):
    """Iterate it for the bytes to POST to /images/load; len() is their number; afterwards it tells what it did."""

    thin = False

    def __init__(self, archive, chunk_size):
        self.archive = archive
        self.path = archive.path
        self.image_id = archive.image_id
        self.chunk_size = chunk_size
        self.bytes_read = 0
        self.bytes_sent = 0
        self.complete = False
        self.layers_sent = len(archive.diff_ids)
        self.layers_skipped = 0
        self._produced = 0
        self._length = 0

    def __len__(self):
        return self._length

    @property
    def verified(self):
        return self.complete and self.archive.sidecar is not None

    def __iter__(self):
        for piece in _withhold_last_byte(self._counted()):
            self.bytes_sent += len(piece)
            yield piece

    def _counted(self):
        try:
            for piece in self._pieces():
                self._produced += len(piece)
                yield piece
        except (OSError, EOFError, tarfile.TarError) as exc:
            raise self.archive.failure(exc)

    def _last(self, piece):
        """The final piece, once everything before it has passed its checks."""
        if self._produced + len(piece) != self._length:
            raise tarfile.TarError('the stream came out %d bytes long, not the %d announced'
                                   % (self._produced + len(piece), self._length))
        self.complete = True
        return piece

    def _pieces(self):
        raise NotImplementedError


class FullStream(LoadStream):
    """The whole tarball, tags stripped; with a sidecar every member's and the whole file's sha256 checked."""

    def __init__(self, archive, chunk_size=CHUNK_SIZE):
        super(FullStream, self).__init__(archive, chunk_size)
        self._replaced = {MANIFEST: (archive.manifest_original, archive.manifest)}
        index = archive.by_name.get(OCI_INDEX)
        if index is not None and index.isreg():
            try:
                with open(archive.path, 'rb', buffering=0) as handle:
                    original = archive.read_member(handle, index)
                self._replaced[OCI_INDEX] = (original, strip_index_names(original))
            except (OSError, EOFError, tarfile.TarError, ValueError) as exc:
                raise archive.failure(exc)
        repositories = archive.by_name.get(LEGACY_REPOSITORIES)
        if repositories is not None and repositories.isreg():
            self._replaced[LEGACY_REPOSITORIES] = (None, None)
        self._length = len(END_OF_ARCHIVE)
        for info in archive.members:
            if not (info.isreg() and info.name in self._replaced):
                self._length += _end(info) - info.offset
            elif self._replaced[info.name][1] is not None:
                data = self._replaced[info.name][1]
                self._length += len(_fresh_header(info.name, len(data), info)) + len(data) + len(_padding(len(data)))

    def _pieces(self):
        """Each member's padding is held back and sent with the next piece, so the byte withheld at the end is a data
        (or header) byte: a stream cut there is refused by tar readers, while one cut inside padding is accepted by Go's
        archive/tar at a clean EOF."""
        archive = self.archive
        whole = BackgroundDigest() if archive.sidecar is not None else None
        with open(self.path, 'rb', buffering=0) as handle:
            _read_sequentially(handle)
            reader = _Reader(handle, self.chunk_size, whole)
            try:
                padding_due = b''
                for info in archive.members:
                    headers = reader.read(info.offset_data - info.offset)
                    if info.isreg() and info.name in self._replaced:
                        replacement = self._read_replaced(reader, info)
                        if replacement is not None:
                            yield padding_due + _fresh_header(info.name, len(replacement), info)
                            yield replacement
                            padding_due = _padding(len(replacement))
                        continue
                    yield padding_due + headers
                    yield from reader.chunks(info.size)
                    padding_due = reader.read(_end(info) - info.offset_data - info.size)
                if whole is not None:
                    reader.drain()
                    actual = whole.hexdigest()
                    if actual != archive.sidecar.get('sha256'):
                        archive.check_every_member(self.chunk_size)
                        raise tarfile.TarError('its sha256 is %s, its sidecar says %s'
                                               % (actual, archive.sidecar.get('sha256')))
            finally:
                self.bytes_read = reader.count
                if whole is not None:
                    whole.close()
        yield self._last(padding_due + END_OF_ARCHIVE)

    def _read_replaced(self, reader, info):
        """Read and check a member that is rewritten or left out; return its replacement (None: left out)."""
        original, replacement = self._replaced[info.name]
        data = reader.read(info.size)
        self.archive.check_member(info, hashlib.sha256(data))
        reader.read(_end(info) - info.offset_data - info.size)
        if original is not None and data != original:
            raise tarfile.TarError('member %s changed while it was read' % info.name)
        return replacement


class ThinStream(LoadStream):
    """The layers above the `held` bottom ones, the config and manifest.json: each checked as it is read."""

    thin = True

    def __init__(self, archive, held, chunk_size=CHUNK_SIZE):
        super(ThinStream, self).__init__(archive, chunk_size)
        self.layers_skipped = held
        self.layers_sent = len(archive.diff_ids) - held
        self._layers = list(zip(archive.layer_names, archive.layer_infos))[held:]
        self._length = len(END_OF_ARCHIVE)
        for name, info in self._layers:
            self._length += len(_fresh_header(name, info.size, info)) + info.size + len(_padding(info.size))
        for name, data, like in self._metadata():
            self._length += len(_fresh_header(name, len(data), like)) + len(data) + len(_padding(len(data)))

    def _metadata(self):
        """The config and manifest.json as checked when the archive was opened: they are not read again."""
        archive = self.archive
        return [(archive.manifest_entry['Config'], archive.config, archive.config_info),
                (MANIFEST, archive.manifest, archive.manifest_info)]

    def _pieces(self):
        padding_due = b''
        digest = None
        with open(self.path, 'rb', buffering=0) as handle:
            _read_sequentially(handle)
            reader = _Reader(handle, self.chunk_size)
            try:
                for name, info in self._layers:
                    yield padding_due + _fresh_header(name, info.size, info)
                    handle.seek(info.offset_data)
                    digest = BackgroundDigest()
                    for data in reader.chunks(info.size):
                        digest.update(data)
                        yield data
                    self.archive.check_member(info, digest)
                    padding_due = _padding(info.size)
            finally:
                self.bytes_read = reader.count
                if digest is not None:
                    digest.close()
        for name, data, like in self._metadata():
            yield padding_due + _fresh_header(name, len(data), like)
            yield data
            padding_due = _padding(len(data))
        yield self._last(padding_due + END_OF_ARCHIVE)
