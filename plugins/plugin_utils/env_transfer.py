# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kohakuriver.docker.env connection decides without a daemon: which container it may use, and the tar
streams its files travel in.

A file goes into the container as a tar stream made while it is sent (a header, the file read in chunks, the end
blocks), and comes out of get_archive's chunks through tarfile's stream mode into a temporary file beside the
destination, renamed over it once complete: memory stays flat whatever the size.
"""

from __future__ import annotations

import os
import stat
import tarfile
import uuid

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import LABEL_MANAGED

CHUNK = 1024 * 1024
BLOCK = tarfile.BLOCKSIZE
GO_MODE_DIR = 1 << 31  # Go's os.ModeDir, in the daemon's path stat


class TransferError(Failure):
    """A file that cannot be sent or fetched, for a reason the user can fix."""


def container_problem(attrs, env, container, docker_host, adopt):
    """Why the connection may not use this inspected container (one line), or None when it may."""
    if attrs is None:
        return ('Environment %s does not exist on %s (no container %s): create it first with '
                'kohakuriver.docker.container or the environment role.' % (env, docker_host, container))
    labels = (attrs.get('Config') or {}).get('Labels') or {}
    if labels.get(LABEL_MANAGED) != 'true' and not adopt:
        return ('Container %s on %s was not made by kohakuriver.docker (it has no %s=true label): set '
                'kohakuriver_env_adopt: true to use it anyway.' % (container, docker_host, LABEL_MANAGED))
    state = attrs.get('State') or {}
    if state.get('Status') != 'running' or state.get('Paused'):
        return ('Environment %s (container %s on %s) is %s, not running; start it with kohakuriver.docker.container '
                '(state: started): this connection never starts a container.'
                % (env, container, docker_host, 'paused' if state.get('Paused') else state.get('Status') or 'not running'))
    return None


def remote_path(path):
    """An absolute, normalised path inside the container; a relative one is taken from /."""
    if not path or '\0' in path:
        raise TransferError('%r is not a path inside the container.' % (path,))
    return os.path.normpath(os.path.join('/', path)).replace('//', '/')


def is_folder(path_stat):
    return bool(path_stat and path_stat.get('mode', 0) & GO_MODE_DIR)


def file_tar(source, name, uid, gid, chunk=CHUNK):
    """The chunks of a tar archive holding one member `name`: the open regular file `source`, read as it is sent."""
    info = os.fstat(source.fileno())
    if not stat.S_ISREG(info.st_mode):
        raise TransferError('%s is not a regular file.' % getattr(source, 'name', name))
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = info.st_size, stat.S_IMODE(info.st_mode), int(info.st_mtime)
    member.uid, member.gid = uid, gid  # the daemon takes the numbers; names are left empty
    yield member.tobuf(tarfile.PAX_FORMAT, 'utf-8', 'surrogateescape')
    left = member.size
    while left:
        data = source.read(min(chunk, left))
        if not data:
            raise TransferError('%s got shorter while it was being sent.' % getattr(source, 'name', name))
        left -= len(data)
        yield data
    yield b'\0' * ((BLOCK - member.size % BLOCK) % BLOCK + 2 * BLOCK)


def write_member(reader, out_path, what, chunk=CHUNK):
    """Write the first member of the tar stream `reader` (a regular file) to out_path, through a temporary file
    beside it that is renamed over out_path once complete. Returns the bytes written."""
    with tarfile.open(fileobj=reader, mode='r|') as archive:
        member = archive.next()
        if member is None or not member.isfile():
            raise TransferError('%s is not a regular file.' % what)
        source = archive.extractfile(member)
        folder, base = os.path.split(os.path.abspath(out_path))
        partial = os.path.join(folder, '.%s.%s.part' % (base, uuid.uuid4().hex[:12]))
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any new file
        written = 0
        try:
            with os.fdopen(descriptor, 'wb') as target:
                while True:
                    data = source.read(chunk)
                    if not data:
                        break
                    target.write(data)
                    written += len(data)
            if written != member.size:
                raise TransferError('%s ended after %d of its %d bytes.' % (what, written, member.size))
            os.replace(partial, out_path)
        except BaseException:
            if os.path.lexists(partial):
                os.unlink(partial)
            raise
    return written
