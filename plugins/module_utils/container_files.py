# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files inside a container through the Docker archive API, so no program (not even a shell) is needed in it.

Writing is a tar archive given to put_archive; reading is get_archive, read as a stream: the tar header (owner,
mode, size) comes first, and the content is read only up to a cap, so a big file is never held in memory.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import APIError, inspect_container, path_stat
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import container_name, validate_env_name

MAX_TEXT = 1 << 20  # bytes read_text returns at most
DIFF_LIMIT = 104448  # bytes of a file shown in a diff, as ansible.builtin.copy's default
CHUNK = 64 * 1024
MAX_LINKS = 40  # symbolic links followed, as Linux does
DEFAULT_MODE = 0o644
FOLDER_MODE = 0o755
_MODE = re.compile(r'0?[0-7]{3,4}')


def _add(archive, path, mode, data, uid=0, gid=0, now=None):
    info = tarfile.TarInfo(path.strip('/'))
    info.uid, info.gid = uid, gid
    info.uname = 'root' if uid == 0 else ''
    info.gname = 'root' if gid == 0 else ''
    info.mode = mode
    info.mtime = int(time.time()) if now is None else now
    if data is None:
        info.type = tarfile.DIRTYPE
        archive.addfile(info)
    else:
        data = data.encode('utf-8') if isinstance(data, str) else data
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def file_archive(entries):
    """A tar archive (bytes) of (path, mode, text or None for a folder) entries owned by root, for put_archive at /."""
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.PAX_FORMAT) as archive:
        for path, mode, text in entries:
            _add(archive, path, mode, text, now=now)
    return buffer.getvalue()


class ChunkReader(io.RawIOBase):
    """A readable file over an iterator of byte strings (the archive stream), for tarfile's stream mode."""

    def __init__(self, chunks):
        super(ChunkReader, self).__init__()
        self._chunks = iter(chunks)
        self._pending = b''

    def readable(self):
        return True

    def readinto(self, buffer):
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = chunk
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


class Current(object):
    """What get_archive says of a path: kind (file, folder, other), owner, mode, size, and the content or None.

    data is the content when the file is at most `limit` bytes; same is whether it equals `expected` (compared while
    streaming, so `expected` may be larger than limit), or None when nothing was expected."""

    def __init__(self, member, data, same):
        self.kind = 'file' if member.isfile() else 'folder' if member.isdir() else 'other'
        self.uid, self.gid, self.mode, self.size = member.uid, member.gid, member.mode & 0o7777, member.size
        self.data = data
        self.same = same


def read_file(client, container_id, path, limit=MAX_TEXT, expected=None):
    """The Current of path in the container (running or not; a symbolic link itself, not followed), None when missing."""
    try:
        stream, _stat = client.api.get_archive(container_id, path, chunk_size=CHUNK)
    except APIError as exc:
        if getattr(exc, 'status_code', None) == 404:
            return None
        raise
    try:
        with tarfile.open(fileobj=ChunkReader(stream), mode='r|') as archive:
            member = archive.next()
            if member is None:
                return None
            if not member.isfile():
                return Current(member, None, None if expected is None else False)
            return _read_member(archive.extractfile(member), member, limit, expected)
    finally:
        close = getattr(stream, 'close', None)
        if close:
            close()


def _read_member(source, member, limit, expected):
    keep = member.size <= limit
    compare = expected is not None and len(expected) == member.size
    if not keep and not compare:
        return Current(member, None, None if expected is None else False)
    parts, offset, same = [], 0, compare
    while True:
        chunk = source.read(CHUNK)
        if not chunk:
            break
        if same and chunk != expected[offset:offset + len(chunk)]:
            same = False
        offset += len(chunk)
        if keep:
            parts.append(chunk)
        elif not same:
            break
    return Current(member, b''.join(parts) if keep else None, None if expected is None else same)


def read_text(client, container_id, path, limit=MAX_TEXT):
    """The text of a regular file in the container (running or not); None when missing, '' when not a small file."""
    current = read_file(client, container_id, path, limit)
    if current is None:
        return None
    if current.kind != 'file' or current.data is None:
        return ''
    return current.data.decode('utf-8', 'replace')


def resolve_links(client, container_id, path):
    """(path, stat) with symbolic links followed; stat is None when the (final) path does not exist."""
    for _hop in range(MAX_LINKS):
        stat = path_stat(client, container_id, path)
        if stat is None or not stat.get('linkTarget'):
            return path, stat
        path = stat['linkTarget']
    raise Failure('Cannot write %r in the container: more than %d symbolic links.' % (path, MAX_LINKS))


def parse_mode(mode, option='mode'):
    """An octal mode given as a number (0o644, from unquoted YAML 0644) or a string ("0644"), or None."""
    if mode is None:
        return None
    if isinstance(mode, int) and not isinstance(mode, bool) and 0 <= mode <= 0o7777:
        return mode
    if isinstance(mode, str) and _MODE.fullmatch(mode):
        return int(mode, 8)
    raise Failure('%s %r is not an octal mode: give it in quotes, such as "0644".' % (option, mode))


def _identity(text, what, table, client, container_id, container):
    """A user or group (name or number) as its number, looking names up in the container's /etc/passwd or /etc/group."""
    if text is None:
        return None
    if text.isdigit():
        return int(text)
    for line in (read_text(client, container_id, resolve_links(client, container_id, table)[0]) or '').splitlines():
        fields = line.split(':')
        if len(fields) > 2 and fields[0] == text and fields[2].isdigit():
            return int(fields[2])
    raise Failure('%s %r is not in %s of %s: give a %s the image knows, or its number.' % (
        what.capitalize(), text, table, container, what))


class CopyRequest(object):
    """The options of container_copy, checked before any Docker call."""

    def __init__(self, params):
        self.env = validate_env_name(params['name'])
        self.container = container_name(self.env)
        dest = params['dest']
        if not dest.startswith('/') or '\0' in dest or dest.endswith('/') or posixpath.normpath(dest) == '/':
            raise Failure('dest %r must be the absolute path of a file inside the container, such as /etc/app.conf.' % dest)
        self.dest = posixpath.normpath(dest)
        self.data = params['content'].encode('utf-8')
        self.mode = parse_mode(params['mode'])
        for option in ('owner', 'group'):
            value = params[option]
            if value is not None and (not value or ':' in value or '\n' in value):
                raise Failure('%s %r must be one user or group name, or a number.' % (option, value))
        self.owner, self.group = params['owner'], params['group']


def _describe(mode, uid, gid):
    return 'mode %04o, owner %d:%d' % (mode, uid, gid)


def _diff(dest, current, data, wanted):
    diff = dict(after_header='%s (%s)' % (dest, _describe(*wanted)))
    if current is None:
        diff.update(before_header='%s (absent)' % dest, before='')
    else:
        diff.update(before_header='%s (%s)' % (dest, _describe(current.mode, current.uid, current.gid)))
        before = _text(current.data)
        if current.data is None or current.size > DIFF_LIMIT:
            diff['dst_larger'] = DIFF_LIMIT
        elif before is None:
            diff['dst_binary'] = 1
        else:
            diff['before'] = before
    after = _text(data)
    if len(data) > DIFF_LIMIT:
        diff['src_larger'] = DIFF_LIMIT
    elif after is None:
        diff['src_binary'] = 1
    else:
        diff['after'] = after
    return diff


def _text(data):
    if data is None:
        return None
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        return None
    return None if '\0' in text else text


def _write(client, container_id, path, data, wanted, container):
    """put_archive of the file and the folders missing above it (root's, 0755) at the deepest folder that exists."""
    missing, base = [], posixpath.dirname(path)
    while True:
        base_path, stat = resolve_links(client, container_id, base)
        if stat is not None:
            if not stat.get('mode', 0) & (1 << 31):  # Go's os.ModeDir
                raise Failure('Cannot write %s in %s: %s is not a folder.' % (path, container, base))
            break
        missing.insert(0, posixpath.basename(base))
        base = posixpath.dirname(base)
    buffer = io.BytesIO()
    now = int(time.time())
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.PAX_FORMAT) as archive:
        for depth in range(1, len(missing) + 1):
            _add(archive, '/'.join(missing[:depth]), FOLDER_MODE, None, now=now)
        mode, uid, gid = wanted
        _add(archive, '/'.join(missing + [posixpath.basename(path)]), mode, data, uid, gid, now)
    client.api.put_archive(container_id, base_path, buffer.getvalue())


def copy_into(client, request, check_mode=False):
    """Make request.dest in the environment container hold request.data with its mode and owner; write only if not."""
    result = dict(changed=False, container=request.container, dest=request.dest)
    attrs = inspect_container(client, request.container)
    if attrs is None:
        why = '%s does not exist; create it first with kohakuriver.docker.container.' % request.container
        if check_mode:
            return dict(result, changed=True, msg=why, warnings=[why])
        raise Failure(why)
    container_id = attrs['Id']
    path, stat = resolve_links(client, container_id, request.dest)
    current = read_file(client, container_id, path, DIFF_LIMIT, request.data) if stat is not None else None
    if current is not None and current.kind != 'file':
        raise Failure('Cannot write %s in %s: it is a %s, not a file.' % (
            request.dest, request.container, 'folder' if current.kind == 'folder' else 'special file'))
    uid = _identity(request.owner, 'user', '/etc/passwd', client, container_id, request.container)
    gid = _identity(request.group, 'group', '/etc/group', client, container_id, request.container)
    wanted = (
        request.mode if request.mode is not None else current.mode if current else DEFAULT_MODE,
        uid if uid is not None else current.uid if current else 0,
        gid if gid is not None else current.gid if current else 0,
    )
    result.update(path=path, size=len(request.data), mode='%04o' % wanted[0], uid=wanted[1], gid=wanted[2])
    if current is not None and current.same and (current.mode, current.uid, current.gid) == wanted:
        return result
    result.update(changed=True, diff=_diff(request.dest, current, request.data, wanted))
    if not check_mode:
        _write(client, container_id, path, request.data, wanted, request.container)
    return result
