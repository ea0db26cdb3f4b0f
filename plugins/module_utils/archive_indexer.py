# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The stream `docker save` sends, indexed in one pass while it is written to disk (the format: image_archive.py).

ArchiveIndexer is fed the bytes of a tar stream in order, in chunks of any size. It records every regular member's
name, the offset of its data, its size and the sha256 of its data, and keeps the bytes of manifest.json. describe()
then reads the image config from the file by its offset, and checks that the archive is what manifest.json says it is.

With trust_layer_digests, the indexer of a fresh `docker save` does not hash the large layer members again: a
layer's digest is its diff ID (legacy `<id>/layer.tar`, matched through manifest.json and the config) or its blob
name (OCI), and the daemon checks every layer against its diff ID as it exports it. Only the small members (the
config, manifest.json, index.json, ...) are hashed, so each byte of a packaging is hashed once, for the whole file.
"""

from __future__ import annotations

import hashlib
import tarfile

from ansible_collections.kohakuriver.docker.plugins.module_utils.image_archive import (
    BLOB, BLOCK, DIGEST, FORMAT_LEGACY, FORMAT_OCI, MANIFEST, METADATA_LIMIT, OCI_LAYOUT, CorruptArchive, check_layer_count,
    config_image_id, image_id_of_config_member, link_target, manifest_entry, normalize_name, parse_config, read_at,
    resolve,
)

_ZERO_BLOCK = bytes(BLOCK)
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_LINKS = (tarfile.LNKTYPE, tarfile.SYMTYPE)
_PAX = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
_GNU_NAMES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_LEGACY_LAYER = '/layer.tar'
TRUSTED_LAYER_MIN_SIZE = 1024 * 1024  # smaller layers are hashed anyway: it costs nothing

_HEADER, _DATA, _PADDING, _END = range(4)


def _parse_pax(data, where):
    """The key/value records of a pax extended header ('<length> <key>=<value>\\n' each)."""
    records = {}
    pos = 0
    while pos < len(data) and data[pos:pos + 1] != b'\0':
        space = data.find(b' ', pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            length = 0
        record = data[space + 1:pos + length]
        if space < 0 or length <= 0 or not record.endswith(b'\n') or b'=' not in record:
            raise CorruptArchive('bad pax header record at byte %d' % pos, where)
        key, value = record[:-1].split(b'=', 1)
        records[key.decode('utf-8', 'surrogateescape')] = value.decode('utf-8', 'surrogateescape')
        pos += length
    return records


class ArchiveIndexer(object):
    """Index a tar stream fed in order: regular members with data offset, size and sha256; links; manifest.json.

    feed() accepts chunks of any size; hashing uses hashlib on large memoryview slices, so it runs at disk speed
    and releases the GIL. finish() raises CorruptArchive unless the stream ended with the end-of-archive blocks.
    """

    def __init__(self, where='stream', trust_layer_digests=False):
        self.where = where
        self.trust_layer_digests = trust_layer_digests
        self.position = 0
        self.members = []
        self.links = []
        self.manifest = None
        self._state = _HEADER
        self._header = bytearray()
        self._zero_blocks = 0
        self._remaining = 0
        self._padding = 0
        self._member = None
        self._digest = None
        self._collect = None
        self._on_complete = None
        self._pending = {}
        self._global = {}

    def _corrupt(self, what):
        raise CorruptArchive(what, self.where)

    def feed(self, data):
        view = memoryview(data)
        end = len(view)
        i = 0
        while i < end:
            state = self._state
            if state == _DATA:
                take = min(self._remaining, end - i)
                piece = view[i:i + take]
                if self._digest is not None:
                    self._digest.update(piece)
                if self._collect is not None:
                    self._collect += piece
                self._remaining -= take
                i += take
                self.position += take
                if not self._remaining:
                    self._member_done()
            elif state == _HEADER:
                take = min(BLOCK - len(self._header), end - i)
                self._header += view[i:i + take]
                i += take
                self.position += take
                if len(self._header) == BLOCK:
                    block = bytes(self._header)
                    self._header = bytearray()
                    self._header_block(block)
            elif state == _PADDING:
                take = min(self._padding, end - i)
                self._padding -= take
                i += take
                self.position += take
                if not self._padding:
                    self._state = _HEADER
            else:
                self.position += end - i
                i = end

    def _header_block(self, block):
        offset = self.position - BLOCK
        if block == _ZERO_BLOCK:
            self._zero_blocks += 1
            if self._zero_blocks == 2:
                self._state = _END
            return
        if self._zero_blocks:
            self._corrupt('a single zero block before the header at byte %d' % offset)
        try:
            info = tarfile.TarInfo.frombuf(block, 'utf-8', 'surrogateescape')
        except tarfile.HeaderError as exc:
            self._corrupt('bad tar header at byte %d (%s)' % (offset, exc))
        extended = info.type in _PAX or info.type in _GNU_NAMES
        attrs = {}
        if not extended:
            attrs = dict(self._global, **self._pending)
            self._pending = {}
        size = info.size
        if 'size' in attrs:
            try:
                size = int(attrs['size'])
            except ValueError:
                self._corrupt('bad pax size %r at byte %d' % (attrs['size'], offset))
        data_offset = self.position
        self._member = None
        self._digest = None
        self._collect = None
        self._on_complete = None
        if extended:
            if size > METADATA_LIMIT:
                self._corrupt('an extended header of %d bytes at byte %d' % (size, offset))
            self._collect = bytearray()
            self._on_complete = (self._extended_done, info.type)
        elif info.type in _REGULAR:
            name = normalize_name(attrs.get('path', info.name))
            self._member = {'name': name, 'offset': data_offset, 'size': size}
            self._digest = None if self._trusted_layer(name, size) else hashlib.sha256()
            if name == MANIFEST:
                if size > METADATA_LIMIT:
                    self._corrupt('manifest.json of %d bytes' % size)
                self._collect = bytearray()
                self._on_complete = (self._manifest_done,)
        elif info.type in _LINKS:
            name = normalize_name(attrs.get('path', info.name))
            target = link_target(name, attrs.get('linkpath', info.linkname), info.type == tarfile.SYMTYPE)
            self.links.append({'name': name, 'target': target})
        elif info.type == tarfile.GNUTYPE_SPARSE:
            self._corrupt('a GNU sparse member at byte %d, which docker save never writes' % offset)
        self._remaining = size
        self._padding = -size % BLOCK
        if size:
            self._state = _DATA
        else:
            self._member_done()

    def _trusted_layer(self, name, size):
        return (self.trust_layer_digests and size >= TRUSTED_LAYER_MIN_SIZE
                and (name.endswith(_LEGACY_LAYER) or BLOB.match(name) is not None))

    def _member_done(self):
        if self._member is not None:
            if self._digest is not None:
                self._member['sha256'] = self._digest.hexdigest()
            else:
                blob = BLOB.match(self._member['name'])
                self._member['sha256'] = blob.group('hex') if blob else None  # a legacy layer's: its diff ID, later
            self.members.append(self._member)
        if self._on_complete is not None:
            handler = self._on_complete[0]
            handler(bytes(self._collect), *self._on_complete[1:])
        self._member = self._digest = self._collect = self._on_complete = None
        self._state = _PADDING if self._padding else _HEADER

    def _extended_done(self, data, kind):
        if kind == tarfile.GNUTYPE_LONGNAME:
            self._pending['path'] = data.split(b'\0', 1)[0].decode('utf-8', 'surrogateescape')
        elif kind == tarfile.GNUTYPE_LONGLINK:
            self._pending['linkpath'] = data.split(b'\0', 1)[0].decode('utf-8', 'surrogateescape')
        elif kind == tarfile.XGLTYPE:
            self._global.update(_parse_pax(data, self.where))
        else:
            self._pending.update(_parse_pax(data, self.where))

    def _manifest_done(self, data):
        self.manifest = data

    def finish(self):
        """Raise CorruptArchive unless the stream was a whole archive; return self."""
        if self._state == _END:
            return self
        if self._state == _DATA:
            name = self._member['name'] if self._member else 'an extended header'
            self._corrupt('it ends inside %s after %d bytes (truncated)' % (name, self.position))
        if self.position == 0:
            self._corrupt('it is empty')
        self._corrupt('it ends after %d bytes without the end-of-archive blocks (truncated)' % self.position)
        return self

    def describe(self, read_member):
        """What the archive holds, checked against manifest.json; read_member(member) returns a member's bytes.

        Returns archive_format, image_id, repo_tags, config, layers (diff_ids), layer_members, members, links.
        """
        try:
            return self._describe(read_member)
        except CorruptArchive as corrupt:
            if corrupt.where is None:
                self._corrupt(corrupt.cause)
            raise

    def _describe(self, read_member):
        if self.manifest is None:
            self._corrupt('no manifest.json; it is not a docker save archive')
        entry = manifest_entry(self.manifest)
        by_name = dict((member['name'], member) for member in self.members)
        links = dict((link['name'], link['target']) for link in self.links)
        config = resolve(entry['Config'], by_name, links, 'config')
        layer_members = [resolve(layer, by_name, links, 'layer') for layer in entry['Layers']]
        if config['size'] > METADATA_LIMIT:
            self._corrupt('the image config %s has %d bytes' % (config['name'], config['size']))
        config_bytes = read_member(config)
        image_id = config_image_id(config_bytes)
        if image_id != 'sha256:' + config['sha256']:
            self._corrupt('the config %s changed on disk while it was read' % config['name'])
        diff_ids = parse_config(config_bytes, config['name'])[1]
        check_layer_count(layer_members, diff_ids)
        if image_id_of_config_member(config['name']) not in (None, image_id):
            self._corrupt('the config %s has sha256 %s' % (config['name'], config['sha256']))
        for member, diff_id in zip(layer_members, diff_ids):
            blob = BLOB.match(member['name'])
            if member['sha256'] is None:
                member['sha256'] = self._trusted_diff_id(member, diff_id)
            elif blob:
                self._check_digest(member, blob, 'layer')
            elif 'sha256:' + member['sha256'] != diff_id:
                self._corrupt('layer %s has sha256 %s, the config says %s' % (member['name'], member['sha256'], diff_id))
        for member in self.members:
            if member['sha256'] is None:
                self._corrupt('it holds %s, which manifest.json does not list as a layer' % member['name'])
        return {
            'archive_format': FORMAT_OCI if OCI_LAYOUT in by_name else FORMAT_LEGACY,
            'image_id': image_id,
            'repo_tags': list(entry.get('RepoTags') or []),
            'config': config['name'],
            'layers': diff_ids,
            'layer_members': [member['name'] for member in layer_members],
            'members': self.members,
            'links': self.links,
        }

    def _trusted_diff_id(self, member, diff_id):
        digest = DIGEST.match(str(diff_id))
        if not digest:
            self._corrupt('the config gives layer %s the diff ID %r, which is no sha256 digest' % (member['name'], diff_id))
        return digest.group('hex')

    def _check_digest(self, member, match, what):
        if match and match.group('hex') != member['sha256']:
            self._corrupt('the %s %s has sha256 %s' % (what, member['name'], member['sha256']))


def read_member_from(path):
    """A read_member for describe(): the bytes of one member of the archive file at path, read by offset."""

    def read_member(member):
        with open(path, 'rb') as handle:
            try:
                return read_at(handle, member['offset'], member['size'])
            except CorruptArchive:
                raise CorruptArchive('%s is cut short' % member['name'], path)

    return read_member
