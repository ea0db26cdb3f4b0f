# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a module meets the signals that end it: SIGTERM as a Failure, so that a module stopped by Ansible (a timeout, a
cancelled run) cleans up as after any failure; and dying with the process that started it.

Standard library only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure


class Interrupted(Failure):
    """What a SIGTERM raises while a SigtermAsFailure is installed."""


class SigtermAsFailure(object):
    """While installed, SIGTERM raises Interrupted(message) in the main thread (the only one signals reach).

    Only the first one, and none once a clean-up began (ending()): a SIGTERM must not break off a clean-up, nor
    replace the failure it cleans up after. Use it as a context manager, or install() and restore() in a finally.
    """

    def __init__(self, message):
        self.message = message
        self.previous = None
        self.interrupted = False

    def install(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    def restore(self):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None

    def ending(self):
        """A clean-up begins: from now on a SIGTERM would only break it off, so it is not raised."""
        self.interrupted = True

    def _raise(self, signum, frame):  # pylint: disable=unused-argument
        if self.interrupted:
            return
        self.interrupted = True
        raise Interrupted(self.message)

    def __enter__(self):
        return self.install()

    def __exit__(self, *exc_info):
        self.restore()
        return False


def die_with_parent():
    """Have the kernel SIGKILL this process when the process that started it dies (Linux); True when that is set.

    Ansible's async_wrapper ends a module past its async time limit with killpg(), but it moves the module's parent
    into that process group only after forking it, so on a loaded machine the module can be started before that and
    escape the kill, running on with nobody to report to. Dying with the parent is the end Ansible means it to have.
    """
    if not sys.platform.startswith('linux'):
        return False
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return True
