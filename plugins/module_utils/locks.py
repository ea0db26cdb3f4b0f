# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-environment advisory locks: one lock file per environment, so one environment never waits on another."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

# The purpose of the lock in a tarball folder under which an environment's tarballs are written and deleted.
PACKAGE_PURPOSE = 'package'


def lock_path(lock_dir, env, purpose='sync'):
    return os.path.join(lock_dir, '.%s.%s.lock' % (env, purpose))


@contextlib.contextmanager
def env_lock(lock_dir, env, timeout=3600, purpose='sync'):
    """Hold an exclusive flock on <lock_dir>/.<env>.<purpose>.lock; fail after timeout seconds of waiting.

    Yields the seconds spent waiting, so callers can tell whether another process held the lock.
    """
    path = lock_path(lock_dir, env, purpose)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise Failure('Cannot create lock file %s: %s.' % (path, exc.strerror))
    started = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise Failure('Cannot lock %s: %s.' % (path, exc.strerror))
                if time.monotonic() - started > timeout:
                    raise Failure('Waited %d s for the %s lock of environment %s (%s); another run still holds it.'
                                  % (timeout, purpose, env, path))
                time.sleep(0.1)
        yield time.monotonic() - started
    finally:
        os.close(fd)
