# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tarball folder on shared storage: which tarballs exist and their sidecars (tarball_info), and writing them.

A tarball is '<env>-<unix seconds>.tar' (KohakuRiver's name, loadable by plain 'docker load -i'). Its sidecar
'<env>-<unix seconds>.tar.json' records what we know about it (its format: sidecar.py); KohakuRiver's own tarballs
have none and count as unverified. Temporary files start with '.' and never match the tarball pattern.
"""

from __future__ import annotations

import errno
import json
import os
import posixpath
import re
import stat
import time
import uuid

from ansible_collections.kohakuriver.docker.plugins.module_utils import sidecar as sidecar_format
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_TARBALL_DIR, parse_tarball_name, tarball_name, validate_env_name
from ansible_collections.kohakuriver.docker.plugins.module_utils.times import iso_seconds

SIDECAR_SUFFIX = sidecar_format.SUFFIX
SIDECAR_FORMAT = sidecar_format.FORMAT
SIGNATURE_SUFFIX = SIDECAR_SUFFIX + sidecar_format.SIGNATURE_SUFFIX
TEMP_SUFFIX = '.partial'
FOLDER_MODE = 0o755
_TEMP_OF = '^\\.(?P<final>%s(?:-\\d+\\.tar(?:\\.json(?:\\.sig)?)?|\\.restart|\\.continue))\\.(?P<pid>\\d+)\\.[0-9a-f]{8,32}' + re.escape(TEMP_SUFFIX) + '$'
_TIMESTAMP = re.compile('[0-9]{1,12}')
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


class Tarball(object):
    """One tarball file found in the folder, with its sidecar when there is one."""

    def __init__(self, folder, file_name, env, timestamp):
        self.folder = folder
        self.file_name = file_name
        self.env = env
        self.timestamp = timestamp
        self.path = os.path.join(folder, file_name)
        self._sidecar = None
        self._sidecar_read = False

    @property
    def sidecar_path(self):
        return sidecar_path(self.path)

    @property
    def sidecar(self):
        """The sidecar (a sidecar.Sidecar), or None when the tarball has none (a KohakuRiver tarball)."""
        if not self._sidecar_read:
            self._sidecar = read_sidecar(self.path)
            self._sidecar_read = True
        return self._sidecar

    def use_sidecar(self, sidecar):
        """Take sidecar (read and checked elsewhere: its signature, signing.py) as this tarball's."""
        self._sidecar, self._sidecar_read = sidecar, True

    def __repr__(self):
        return 'Tarball(%r)' % self.path


def sidecar_path(tarball_path):
    return tarball_path + SIDECAR_SUFFIX


def signature_path(tarball_path):
    """The Host's signature over the sidecar of tarball_path."""
    return tarball_path + SIGNATURE_SUFFIX


def read_sidecar(tarball_path):
    """The sidecar of tarball_path as a validated sidecar.Sidecar, None when absent; one that cannot be read or is invalid is a Failure."""
    return sidecar_format.read(tarball_path)


def tarball_folder(tarball_dir):
    """The tarball_dir option as a normalised absolute path; a relative one is a Failure (every module takes it here)."""
    if not isinstance(tarball_dir, str) or not tarball_dir or not posixpath.isabs(tarball_dir):
        raise Failure('tarball_dir %r is not an absolute path: give the folder from the root, like %s.'
                      % (tarball_dir, DEFAULT_TARBALL_DIR))
    return posixpath.normpath(tarball_dir)


def link_out_of(folder, path):
    """Where path leads when it is a link leading out of folder, else None: the rule for touching a tarball by name."""
    if not os.path.islink(path):
        return None
    target = os.path.realpath(path)
    return None if os.path.dirname(target) == os.path.realpath(folder) else target


def refuse_link_out_of(folder, path, doing):
    """Raise a Failure when path is a link leading out of folder (doing: 'touch it', 'load it')."""
    target = link_out_of(folder, path)
    if target is not None:
        raise Failure('%s is a link pointing out of tarball_dir (to %s); refusing to %s. Put the file itself in %s.'
                      % (path, target, doing, folder))


def list_tarballs(folder, env=None):
    """Every tarball in folder (of one env when given), newest first. Missing folder is a Failure."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        raise Failure('Tarball folder %s does not exist; create it or set tarball_dir.' % folder)
    except OSError as exc:
        raise Failure('Cannot read tarball folder %s: %s.' % (folder, exc.strerror))
    found = []
    for file_name in names:
        parsed = parse_tarball_name(file_name, env)
        if parsed and os.path.isfile(os.path.join(folder, file_name)):
            found.append(Tarball(folder, file_name, parsed[0], parsed[1]))
    found.sort(key=lambda tarball: (tarball.timestamp, tarball.env), reverse=True)
    return found


def newest_tarball(folder, env):
    tarballs = list_tarballs(folder, env)
    return tarballs[0] if tarballs else None


def describe_tarball(tarball):
    """What tarball_info returns for one tarball: env, timestamp, date, size, path, verified, sha256, image_id, problem.

    verified: a well-formed sidecar describes the tarball and, when it records a size, the file has it (the contents
    are checked by image_sync, not here). A sidecar that is invalid or disagrees, or a link leading out of the
    folder, leaves the tarball unverified, with the reason in 'problem'.
    """
    problem = None
    try:
        size = os.stat(tarball.path).st_size
    except OSError:
        size = None
    target = link_out_of(tarball.folder, tarball.path)
    try:
        sidecar = tarball.sidecar
    except Failure as failure:
        sidecar, problem = None, failure.msg
    if target is not None:
        problem = '%s is a link pointing out of tarball_dir (to %s); image_sync refuses to load it.' % (tarball.path, target)
    elif sidecar is not None and sidecar.size not in (None, size):
        problem = '%s is %s bytes, its sidecar %s says %d.' % (tarball.path, size, tarball.sidecar_path, sidecar.size)
    return {
        'env': tarball.env, 'timestamp': tarball.timestamp, 'date': iso_seconds(tarball.timestamp),
        'file': tarball.file_name, 'path': tarball.path, 'size': size, 'verified': sidecar is not None and problem is None,
        'sha256': sidecar.sha256 if sidecar is not None else None, 'image_id': sidecar.image_id if sidecar is not None else None,
        'problem': problem,
    }


class InfoRequest(object):
    """tarball_info's parameters, validated: env (name; None for every environment) and folder (tarball_dir)."""

    def __init__(self, params):
        self.env = None if params['name'] is None else validate_env_name(params['name'])
        self.folder = tarball_folder(params['tarball_dir'])


def tarball_info(request):
    """tarball_info: describe_tarball of every tarball the request asks for, newest first; reads only."""
    return dict(changed=False, tarballs=[describe_tarball(tarball) for tarball in list_tarballs(request.folder, request.env)])


# The write side. Every writer holds the environment's package lock (locks.env_lock in the tarball folder).

def restart_marker_path(folder, env):
    """The file a packaging run keeps while it has stopped env's container, so a killed run's successor restarts it."""
    return os.path.join(folder, '.%s.restart' % env)


def choose_timestamp(now, newest_timestamp=None):
    """The next tarball number: now in whole seconds, but always greater than the newest existing one."""
    timestamp = int(now)
    if newest_timestamp is not None and timestamp <= newest_timestamp:
        timestamp = newest_timestamp + 1
    return timestamp


def ensure_folder(folder, check_mode=False):
    """Make sure folder exists (created 0755 when missing, its parent must exist) and is writable.

    Returns True when the folder was (or, in check mode, would be) created.
    """
    if os.path.isdir(folder):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise Failure('Tarball folder %s is not writable (%s); fix its permissions or mount, or set tarball_dir.'
                          % (folder, 'read-only file system' if _read_only(folder) else 'permission denied'))
        return False
    if os.path.lexists(folder):
        raise Failure('tarball_dir %s exists but is not a folder; set tarball_dir to a folder.' % folder)
    parent = os.path.dirname(os.path.normpath(folder))
    if not os.path.isdir(parent):
        raise Failure('The parent %s of tarball_dir does not exist; mount the shared storage or create it first.' % parent)
    if check_mode:
        return True
    try:
        os.mkdir(folder, FOLDER_MODE)
        os.chmod(folder, FOLDER_MODE)
    except FileExistsError:
        return False
    except OSError as exc:
        raise Failure('Cannot create tarball folder %s: %s; fix the permissions of %s.' % (folder, exc.strerror, parent))
    fsync_folder(parent)
    return True


def _read_only(folder):
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def free_bytes(folder):
    stats = os.statvfs(folder)
    return stats.f_bavail * stats.f_frsize


def fsync_folder(folder):
    fd = os.open(folder, os.O_RDONLY | getattr(os, 'O_DIRECTORY', 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path_for(final_path):
    """A hidden, unique temporary name beside final_path, which never matches the tarball pattern."""
    folder, name = os.path.split(final_path)
    return os.path.join(folder, '.%s.%d.%s%s' % (name, os.getpid(), uuid.uuid4().hex[:12], TEMP_SUFFIX))


def create_temp(final_path):
    """(path, fd) of a new empty temporary file for final_path, private (0600) until published."""
    path = temp_path_for(final_path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, 'O_CLOEXEC', 0), 0o600)
    except OSError as exc:
        raise Failure('Cannot create %s: %s.' % (path, exc.strerror))
    return path, fd


def write_failure(path, written, exc):
    """The Failure for a write to the temporary file path that failed after written bytes."""
    folder = os.path.dirname(path)
    if exc.errno in _FULL:
        return Failure('Tarball folder %s is full (%s) after %d bytes of the image; free space or set tarball_dir. '
                       'Nothing was published.' % (folder, exc.strerror, written))
    return Failure('Cannot write %s after %d bytes: %s. Nothing was published.' % (path, written, exc.strerror))


def write_all(fd, data, path, written=0):
    """Write all of data (bytes or a memoryview) to fd, the temporary file path, after written bytes of it.

    Disk errors (full, quota, I/O) become a Failure that says so; the caller removes the temporary file.
    """
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError as exc:
        raise write_failure(path, written, exc)


def seal(fd, path, mode):
    """Give a written temporary file its final mode and flush it to disk; closes fd."""
    try:
        os.fchmod(fd, mode)
        os.fsync(fd)
    except OSError as exc:
        raise write_failure(path, os.fstat(fd).st_size, exc)
    finally:
        os.close(fd)


def remove_quietly(path):
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def json_bytes(data):
    """data as the JSON bytes a sidecar is written (and signed) as."""
    return json.dumps(data, indent=1, sort_keys=True).encode('utf-8') + b'\n'


def write_json_atomically(path, data, mode):
    """Write data as JSON to a temporary file, flush it, and rename it over path."""
    write_atomically(path, json_bytes(data), mode)


def write_atomically(path, raw, mode):
    """Write the bytes raw to a temporary file, flush it, and rename it over path."""
    temp, fd = create_temp(path)
    try:
        write_all(fd, raw, temp)
        seal(fd, temp, mode)
        fd = None
        os.rename(temp, path)
    except OSError as exc:
        raise Failure('Cannot write %s: %s.' % (path, exc.strerror))
    finally:
        if fd is not None:
            os.close(fd)
        remove_quietly(temp)


def publish(temp_path, final_path, sidecar, mode, sign=None):
    """Make a sealed temporary tarball visible: signature and sidecar first, then the tarball under its final name,
    then the folder. sign: a function from the sidecar's bytes to their signature (signing.Signer), or None.

    The tarball never replaces an existing file: it is hard-linked to its final name (a filesystem without hard
    links gets a rename after a check). A reader that sees the tarball therefore sees its sidecar and signature.
    """
    folder = os.path.dirname(final_path)
    if os.path.lexists(final_path):
        raise Failure('%s appeared while this tarball was made; not replacing it.' % final_path)
    raw = json_bytes(sidecar)
    if sign is not None:
        write_atomically(signature_path(final_path), sign(raw), mode)
    else:
        remove_quietly(signature_path(final_path))
    write_atomically(sidecar_path(final_path), raw, mode)
    try:
        os.link(temp_path, final_path)
    except FileExistsError:
        remove_quietly(sidecar_path(final_path))
        remove_quietly(signature_path(final_path))
        raise Failure('%s appeared while this tarball was made; not replacing it.' % final_path)
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            raise Failure('Cannot publish %s: %s.' % (final_path, exc.strerror))
        os.rename(temp_path, final_path)
    remove_quietly(temp_path)
    fsync_folder(folder)


def remove_tarball(tarball):
    """Delete a tarball, then its sidecar and signature; return the paths that were removed."""
    removed = [path for path in (tarball.path, tarball.sidecar_path, signature_path(tarball.path)) if remove_quietly(path)]
    return removed


def remove_beyond(folder, env, keep, protect=()):
    """Delete env's tarballs (and sidecars) beyond the newest keep, except those whose timestamp is in protect (the
    pinned ones); return the removed tarball paths."""
    removed = []
    for tarball in list_tarballs(folder, env)[keep:]:
        if tarball.timestamp in protect:
            continue
        remove_tarball(tarball)
        removed.append(tarball.path)
    if removed:
        fsync_folder(folder)
    return removed


def clean_stale(folder, env, before):
    """Delete what killed runs of env left: our temporary files older than before, and sidecars (or signatures)
    without tarball.

    Call it holding env's package lock, with before = the time the lock was taken: no live writer of env exists.
    """
    temp = re.compile(_TEMP_OF % re.escape(env))
    cleaned = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        stale_temp = temp.match(name)
        suffix = next((suffix for suffix in (SIDECAR_SUFFIX, SIGNATURE_SUFFIX) if name.endswith(suffix)), None)
        orphan = suffix and parse_tarball_name(name[:-len(suffix)], env) and not os.path.lexists(path[:-len(suffix)])
        if not (stale_temp or orphan):
            continue
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISREG(info.st_mode) and (orphan or info.st_mtime <= before) and remove_quietly(path):
            cleaned.append(path)
    return cleaned


def named_tarball(folder, env, file_name):
    """The tarball file_name of env in folder (None when it does not exist), refusing anything but such a name."""
    if not isinstance(file_name, str) or '/' in file_name or '\0' in file_name or '..' in file_name \
            or os.path.basename(file_name) != file_name:
        raise Failure('tarball %r is not a tarball file name: give a name like %s, without any folder.'
                      % (file_name, tarball_name(env, 1700000000)))
    parsed = parse_tarball_name(file_name)
    if parsed is None:
        raise Failure('tarball %r is not a tarball file name: give a name like %s.' % (file_name, tarball_name(env, 1700000000)))
    if parsed[0] != env:
        raise Failure('tarball %s belongs to environment %s, not to %s; set name to %s.' % (file_name, parsed[0], env, parsed[0]))
    path = os.path.join(folder, file_name)
    refuse_link_out_of(folder, path, 'touch it')
    if not os.path.islink(path) and os.path.lexists(path) and not os.path.isfile(path):
        raise Failure('%s is not a regular file; refusing to touch it.' % path)
    if not os.path.lexists(path):
        return None
    return Tarball(folder, file_name, env, parsed[1])


def pin_timestamp(env, pin):
    """The timestamp a pin of env names: a tarball file name ('<env>-<unix seconds>.tar') or the timestamp itself."""
    text = str(pin).strip() if isinstance(pin, (str, int)) and not isinstance(pin, bool) else ''
    if _TIMESTAMP.fullmatch(text):
        return int(text)
    parsed = parse_tarball_name(text)
    if parsed is None:
        raise Failure('pin %r is neither a tarball file name like %s nor its timestamp like 1700000000.'
                      % (pin, tarball_name(env, 1700000000)))
    if parsed[0] != env:
        raise Failure('pin %s is a tarball of environment %s, not of %s; pin a tarball of %s.' % (text, parsed[0], env, env))
    return parsed[1]


def protected_timestamps(env, pins):
    """The timestamps of a list of pins of env (the protect option: file names or timestamps), validated; a frozenset."""
    if pins is not None and not isinstance(pins, (list, tuple)):
        raise Failure('protect must be a list of tarball file names or timestamps of %s, not %r.' % (env, pins))
    return frozenset(pin_timestamp(env, pin) for pin in pins or [])


def names_kept(names, keep, protect=()):
    """Of tarball file names (newest first), those remove_beyond keeps: the newest keep and the protected ones."""
    return [name for index, name in enumerate(names) if index < keep or (parse_tarball_name(name) or (None, None))[1] in protect]


def chosen_tarball(kept, folder, env, pin=None):
    """Of env's tarballs kept in folder (list_tarballs, newest first): the newest (None when none), or the one a pin names
    (see pin_timestamp); a pin the folder does not hold is a Failure listing the kept ones."""
    if pin is None:
        return kept[0] if kept else None
    timestamp = pin_timestamp(env, pin)
    for tarball in kept:
        if tarball.timestamp == timestamp:
            return tarball
    raise Failure('pin %s is not a kept tarball of environment %s in %s; kept: %s.'
                  % (pin, env, folder, ', '.join(tarball.file_name for tarball in kept) or 'none'))


def wait_until(timestamp, clock=time.time, sleep=time.sleep):
    """Sleep until clock() has reached timestamp (whole seconds)."""
    while clock() < timestamp:
        sleep(min(1.0, max(0.01, timestamp - clock())))
