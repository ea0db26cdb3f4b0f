# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sidecar format: '<env>-<unix seconds>.tar.json' beside a tarball, read and validated here.

A sidecar is a JSON object (format FORMAT) that the tarball module writes before it publishes the tarball. What it
says is a claim about the tarball, never trusted on its own: image_sync checks size, manifest and config against the
tarball before it relies on it, and every byte it loads against the sha256s. Its fields:

- format: FORMAT. env, file: the environment and the tarball's file name. timestamp: the number in that name.
- size: the tarball's size in bytes. sha256: hex sha256 of the whole file.
- image_id: 'sha256:<hex>', the sha256 of the image config, which is the image ID on every engine.
- repo_tags: the tags manifest.json carries. archive_format: 'docker-legacy' (Docker < 25) or 'oci'.
- config: the config's member name. layers: the config's rootfs.diff_ids ('sha256:<hex>', bottom first).
  layer_members: manifest.json's layer member names, in the same order.
- members: every regular file of the archive, in order: name, offset (of its data), size, sha256 (hex).
- links: every hard or symbolic link member: name, target.
- source: container, container_id, host (what was packaged). engine: version, api_version (of the Host's daemon).
- created, image_created: when the tarball and the image were made (ISO-8601 strings).
- runtime_config, container_changes: what the next packaging compares (a dict, a hex sha256).
- registry (only when the tarball module pushed the image, `registry` option): repository ('<url>/<namespace>/<env>'),
  tag (the timestamp, a string) and digest ('sha256:<hex>', the manifest digest the daemon reported, whose manifest
  was read back and names image_id as its config). Written only after that check, and signed like every field.

Every field the code reads is type-checked here, so a hand-edited sidecar is a one-line Failure, never a traceback.
Fields are optional when read (KohakuRiver-era and hand-made sidecars list a few); COMPLETE lists those a tarball must
have for image_sync to check it against its sidecar (require_complete).
"""

from __future__ import annotations

import json
import re

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

FORMAT = 'kohakuriver.docker/tarball-v1'
SUFFIX = '.json'
SIGNATURE_SUFFIX = '.sig'  # '<tarball>.json.sig': the Host's signature over the sidecar's bytes (signing.py)
MAX_SIZE = 64 * 1024 * 1024
COMPLETE = ('size', 'sha256', 'image_id', 'layers', 'members')
_HEX = re.compile(r'^[0-9a-f]{64}$')
_DIGEST = re.compile(r'^sha256:[0-9a-f]{64}$')
_ADVICE = 'remove the sidecar to treat the tarball as unverified, or package again.'


class Invalid(Exception):
    """A field of a sidecar that is not what it must be: field is its path ('members[2].offset'), what the problem."""

    def __init__(self, field, what):
        super(Invalid, self).__init__('%s is %s' % (field, what))
        self.field = field
        self.what = what


def path_of(tarball_path):
    return tarball_path + SUFFIX


def _shown(value):
    text = json.dumps(value) if not isinstance(value, (bytes, bytearray)) else repr(value)
    return text if len(text) <= 40 else text[:37] + '...'


def _string(field, value):
    if not isinstance(value, str):
        raise Invalid(field, '%s, not a string' % _shown(value))
    return value


def _optional_string(field, value):
    return None if value is None else _string(field, value)


def _count(field, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Invalid(field, '%s, not a whole number >= 0' % _shown(value))
    return value


def _hex(field, value):
    if not isinstance(value, str) or not _HEX.match(value):
        raise Invalid(field, '%s, not 64 lowercase hex digits (a sha256)' % _shown(value))
    return value


def _digest(field, value):
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise Invalid(field, '%s, not sha256:<64 lowercase hex digits>' % _shown(value))
    return value


def _object(field, value):
    if not isinstance(value, dict):
        raise Invalid(field, '%s, not an object' % _shown(value))
    return value


def _list_of(check):
    def checked(field, value):
        if not isinstance(value, list):
            raise Invalid(field, '%s, not a list' % _shown(value))
        for index, item in enumerate(value):
            check('%s[%d]' % (field, index), item)
        return value
    return checked


def _record(fields, required=True):
    """An object whose keys in fields are checked (each required, or only when present); other keys are ignored."""
    def checked(field, value):
        _object(field, value)
        for key, check in fields:
            if key in value:
                check('%s.%s' % (field, key), value[key])
            elif required:
                raise Invalid('%s.%s' % (field, key), 'missing')
        return value
    return checked


_MEMBER = _record([('name', _string), ('offset', _count), ('size', _count), ('sha256', _hex)])
_LINK = _record([('name', _string), ('target', _string)])

FIELDS = [
    ('env', _string),
    ('file', _string),
    ('timestamp', _count),
    ('size', _count),
    ('sha256', _hex),
    ('image_id', _digest),
    ('repo_tags', _list_of(_string)),
    ('archive_format', _string),
    ('config', _string),
    ('layers', _list_of(_digest)),
    ('layer_members', _list_of(_string)),
    ('members', _list_of(_MEMBER)),
    ('links', _list_of(_LINK)),
    ('source', _record([('container', _optional_string), ('container_id', _optional_string), ('host', _optional_string)],
                       required=False)),
    ('engine', _record([('version', _optional_string), ('api_version', _optional_string)], required=False)),
    ('created', _optional_string),
    ('image_created', _optional_string),
    ('runtime_config', _object),
    ('container_changes', _hex),
    ('registry', _record([('repository', _string), ('tag', _string), ('digest', _digest)])),
]


class Member(object):
    """One regular file of the archive as the sidecar lists it: name, offset (of its data), size, sha256 (hex)."""

    __slots__ = ('name', 'offset', 'size', 'sha256')

    def __init__(self, entry):
        self.name = entry.get('name')
        self.offset = entry.get('offset')
        self.size = entry.get('size')
        self.sha256 = entry.get('sha256')

    @property
    def layout(self):
        return self.name, self.offset, self.size


class Sidecar(dict):
    """A sidecar as read (the dict as written, checked by check()), with a typed accessor per field readers use.

    An accessor is None when the field is absent (members: an empty list).
    """

    def __init__(self, data):
        super(Sidecar, self).__init__(check(data))

    env = property(lambda self: self.get('env'))
    file = property(lambda self: self.get('file'))
    timestamp = property(lambda self: self.get('timestamp'))
    size = property(lambda self: self.get('size'))
    sha256 = property(lambda self: self.get('sha256'))
    image_id = property(lambda self: self.get('image_id'))
    repo_tags = property(lambda self: self.get('repo_tags'))
    archive_format = property(lambda self: self.get('archive_format'))
    config = property(lambda self: self.get('config'))
    layers = property(lambda self: self.get('layers'))
    layer_members = property(lambda self: self.get('layer_members'))
    runtime_config = property(lambda self: self.get('runtime_config'))
    container_changes = property(lambda self: self.get('container_changes'))
    registry = property(lambda self: self.get('registry'))  # {repository, tag, digest} or None

    @property
    def source_container_id(self):
        return (self.get('source') or {}).get('container_id')

    @property
    def members(self):
        return [Member(entry) for entry in self.get('members') or []]


def check(data):
    """Raise Invalid unless data is a well-formed sidecar (every field present has its type); return data."""
    if not isinstance(data, dict):
        raise Invalid('the sidecar', '%s, not a JSON object' % _shown(data))
    if data.get('format') != FORMAT:
        raise Invalid('format', '%s, not "%s"' % (_shown(data.get('format')), FORMAT))
    for key, checker in FIELDS:
        if key in data:
            checker(key, data[key])
    return data


def validate(data, where):
    """data, checked (see check), as a Sidecar; a bad field is a one-line Failure naming where (the sidecar's path)."""
    try:
        return Sidecar(data)
    except Invalid as invalid:
        raise Failure('%s: %s; %s' % (where, invalid, _ADVICE))


def parse(raw, where):
    """Bytes of a sidecar file -> the validated Sidecar; anything else is a one-line Failure naming where."""
    try:
        data = json.loads(raw.decode('utf-8'))
    except (ValueError, RecursionError) as exc:
        raise Failure('%s: not a JSON sidecar (%s); %s' % (where, ' '.join(str(exc).split()), _ADVICE))
    return validate(data, where)


def read_raw(tarball_path):
    """The bytes of tarball_path's sidecar, None when it has none; an unreadable or oversized one is a Failure."""
    where = path_of(tarball_path)
    try:
        with open(where, 'rb') as handle:
            raw = handle.read(MAX_SIZE + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Failure('Cannot read the sidecar %s: %s; fix its permissions, or remove it to treat the tarball as '
                      'unverified.' % (where, exc.strerror))
    if len(raw) > MAX_SIZE:
        raise Failure('%s: larger than %d bytes, not a sidecar; %s' % (where, MAX_SIZE, _ADVICE))
    return raw


def read(tarball_path):
    """The validated Sidecar of tarball_path, None when it has none; an unreadable or invalid one is a Failure."""
    raw = read_raw(tarball_path)
    return None if raw is None else parse(raw, path_of(tarball_path))


def require_complete(data, where):
    """Raise a Failure unless the (validated) sidecar has every field a check against its tarball needs."""
    missing = [key for key in COMPLETE if key not in data]
    if missing:
        raise Failure('%s: %s %s missing, so it cannot be checked against its tarball; %s'
                      % (where, ', '.join(missing), 'is' if len(missing) == 1 else 'are', _ADVICE))
    return data


def build(env, timestamp, file, size, sha256, source, engine, created, image_created, runtime_config, container_changes,
          described):
    """The sidecar of a tarball just written, checked as every reader checks it: the given fields, then described (what the archive's
    indexer found: image_id, repo_tags, archive_format, config, layers, layer_members, members, links).

    source: container, container_id, host; engine: version, api_version (dicts, see the fields above).
    """
    data = dict(format=FORMAT, env=env, timestamp=timestamp, file=file, size=size, sha256=sha256, source=dict(source),
                engine=dict(engine), created=created, image_created=image_created, runtime_config=runtime_config,
                container_changes=container_changes)
    data.update(described)
    return Sidecar(data)
