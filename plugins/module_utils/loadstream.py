# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The byte streams sent to the daemon's image load endpoint, read straight from a tarball on disk.

image_archive.ImageArchive walks the tarball's tar headers (seeking over the data), reads manifest.json and the image
config, and checks them and the layout against the sidecar. A stream is made from it, one of two:
- FullStream(archive): the tarball as it is, headers and data passed through as read, except that manifest.json carries
  no RepoTags, index.json (OCI layout) no image-name annotations and `repositories` is left out, so the daemon tags
  nothing on load (the caller tags `kohakuriver/<env>:base` only after the loaded image ID checks out). With a
  sidecar the whole file's sha256 is checked on the way: one hash of every byte, on a thread of its own so that
  sending never waits for it (a second hash per member would cost as much again, on the cores the daemon needs);
  when it differs, a second read names the member that changed.
- ThinStream(archive, held): the layers above the `held` bottom ones, then the config and manifest.json (rewritten alike),
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
import os
import queue
import tarfile
import threading

from ansible_collections.kohakuriver.docker.plugins.module_utils.image_archive import (
    BLOCK, END_OF_ARCHIVE, LEGACY_REPOSITORIES, MANIFEST, OCI_INDEX, OCI_LAYOUT, CorruptArchive, read_at, strip_index_names,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import (
    LEGACY_MANIFEST_TYPE, MANIFEST_LIMIT, OCI_LAYOUT_FILE, digest_of, legacy_manifest, oci_index,
)

CHUNK_SIZE = 8 * 1024 * 1024  # one read of the tarball, one piece for the socket; two wait for BackgroundDigest at most
SMALL_PIECE = 64 * 1024


def _padding(size):
    return b'\0' * (-size % BLOCK)


def _end(info):
    """Where the member after info starts: after its data and that data's padding."""
    return info.offset_data + info.size + (-info.size % BLOCK)


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
        data = read_at(self.handle, self.handle.tell(), size) if size else b''
        self._account(data)
        return data

    def chunks(self, size):
        """The next size bytes, in pieces of at most chunk_size."""
        while size:
            data = self.handle.read(min(self.chunk_size, size))
            if not data:
                raise CorruptArchive('unexpected end of data at byte %d' % self.handle.tell())
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
        except (OSError, EOFError, tarfile.TarError, CorruptArchive) as exc:
            raise self.archive.failure(exc)

    def _last(self, piece):
        """The final piece, once everything before it has passed its checks."""
        if self._produced + len(piece) != self._length:
            raise CorruptArchive('the stream came out %d bytes long, not the %d announced'
                                 % (self._produced + len(piece), self._length))
        self.complete = True
        return piece

    def _pieces(self):
        raise NotImplementedError

    def _check_whole(self, whole):
        """Raise unless the file's sha256 (whole, fed every byte of it) is its sidecar's, naming the first member whose
        own sha256 does not match when one does not."""
        actual = whole.hexdigest()
        if actual != self.archive.sidecar.sha256:
            self._check_every_member()
            raise CorruptArchive('its sha256 is %s, its sidecar says %s' % (actual, self.archive.sidecar.sha256))

    def _check_every_member(self):
        """Read every file of the archive again; raise at the first whose sha256 does not match its sidecar entry."""
        with open(self.path, 'rb', buffering=0) as handle:
            reader = _Reader(handle, self.chunk_size)
            for info in self.archive.members:
                if info.isreg():
                    handle.seek(info.offset_data)
                    digest = hashlib.sha256()
                    for data in reader.chunks(info.size):
                        digest.update(data)
                    self.archive.check_member(info, digest)


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
            except (OSError, EOFError, tarfile.TarError, CorruptArchive) as exc:
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
                    self._check_whole(whole)
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
            raise CorruptArchive('member %s changed while it was read' % info.name)
        return replacement


class ThinStream(LoadStream):
    """The layers above the `held` bottom ones, the config and manifest.json: each checked as it is read."""

    def __init__(self, archive, held, chunk_size=CHUNK_SIZE):
        super(ThinStream, self).__init__(archive, chunk_size)
        self.thin = held > 0
        self.layers_skipped = held
        self.layers_sent = len(archive.diff_ids) - held
        self._layers = self._layer_members()[held:]
        self._length = len(END_OF_ARCHIVE)
        for name, info in self._layers:
            self._length += len(_fresh_header(name, info.size, info)) + info.size + len(_padding(info.size))
        for name, data, like in self._metadata():
            self._length += len(_fresh_header(name, len(data), like)) + len(data) + len(_padding(len(data)))

    def _layer_members(self):
        """(name in the stream, TarInfo in the archive) of every layer, bottom first."""
        return list(zip(self.archive.layer_names, self.archive.layer_infos))

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


class OciThinStream(ThinStream):
    """A ThinStream laid out as OCI (blobs/sha256/<digest>, index.json, oci-layout), for the containerd image store.

    Its import finds a docker-legacy manifest.json's layers by member name in the archive alone (a thin one is refused:
    `failed to resolve layers`), while an OCI layout's layers are blobs it may already hold in its content store. A
    docker-legacy archive's image is given the manifest containerd makes of the whole archive
    (image_identity.legacy_manifest), so thin and whole loads give one image ID; an OCI archive keeps its own blobs.
    """

    def _layer_members(self):
        if self._is_oci():
            return super(OciThinStream, self)._layer_members()
        return [('blobs/sha256/' + diff_id[len('sha256:'):], info)
                for diff_id, info in zip(self.archive.diff_ids, self.archive.layer_infos)]

    def _is_oci(self):
        return OCI_INDEX in self.archive.by_name

    def _metadata(self):
        cached = getattr(self, '_oci_metadata', None)
        if cached is None:
            try:
                cached = self._oci_members() if self._is_oci() else self._legacy_members()
            except (OSError, EOFError, tarfile.TarError, CorruptArchive) as exc:
                raise self.archive.failure(exc)
            self._oci_metadata = cached
        return cached

    def _legacy_members(self):
        archive = self.archive
        layers = [(diff_id, info.size) for diff_id, info in zip(archive.diff_ids, archive.layer_infos)]
        manifest = legacy_manifest(archive.image_id, archive.config_info.size, layers)
        manifest_id = digest_of(manifest)
        like = archive.manifest_info
        return [('blobs/sha256/' + archive.image_id[len('sha256:'):], archive.config, archive.config_info),
                ('blobs/sha256/' + manifest_id[len('sha256:'):], manifest, like),
                (OCI_INDEX, oci_index(LEGACY_MANIFEST_TYPE, manifest_id, len(manifest)), like),
                (OCI_LAYOUT, OCI_LAYOUT_FILE, like)]

    def _oci_members(self):
        """The config, every other blob that is no layer (manifests, indexes), index.json without names, oci-layout."""
        archive = self.archive
        layers = set(info.name for info in archive.layer_infos) | set(archive.layer_names)
        members = [(archive.config_info.name, archive.config, archive.config_info)]
        with open(archive.path, 'rb', buffering=0) as handle:
            for info in archive.members:
                if (info.isreg() and info.name.startswith('blobs/') and info.name not in layers and info is not archive.config_info
                        and info.size <= MANIFEST_LIMIT):
                    members.append((info.name, archive.read_member(handle, info), info))
            index = archive.by_name[OCI_INDEX]
            members.append((OCI_INDEX, strip_index_names(archive.read_member(handle, index)), index))
        members.append((OCI_LAYOUT, OCI_LAYOUT_FILE, archive.manifest_info))
        return members


class OciWholeStream(OciThinStream):
    """Every layer of the tarball laid out as OCI, for the containerd image store. The file is read once, front to
    back, so that with a sidecar its whole sha256 is checked as FullStream checks it (without one, each blob's against
    its name); the layers go in the order they lie in the file."""

    def __init__(self, archive, chunk_size=CHUNK_SIZE):
        super(OciWholeStream, self).__init__(archive, 0, chunk_size)

    def _pieces(self):
        archive = self.archive
        names = dict((info.name, name) for name, info in self._layers)
        whole = BackgroundDigest() if archive.sidecar is not None else None
        padding_due = b''
        digest = None
        with open(self.path, 'rb', buffering=0) as handle:
            _read_sequentially(handle)
            reader = _Reader(handle, self.chunk_size, whole)
            try:
                for info in archive.members:
                    reader.read(info.offset_data - info.offset)
                    name = names.get(info.name) if info.isreg() else None
                    if name is None:
                        for _data in reader.chunks(info.size):
                            pass
                    else:
                        yield padding_due + _fresh_header(name, info.size, info)
                        digest = BackgroundDigest() if whole is None else None
                        for data in reader.chunks(info.size):
                            if digest is not None:
                                digest.update(data)
                            yield data
                        if digest is not None:
                            archive.check_member(info, digest)
                        padding_due = _padding(info.size)
                    reader.read(_end(info) - info.offset_data - info.size)
                if whole is not None:
                    reader.drain()
                    self._check_whole(whole)
            finally:
                self.bytes_read = reader.count
                for running in (whole, digest):
                    if running is not None:
                        running.close()
        for name, data, like in self._metadata():
            yield padding_due + _fresh_header(name, len(data), like)
            yield data
            padding_due = _padding(len(data))
        yield self._last(padding_due + END_OF_ARCHIVE)
