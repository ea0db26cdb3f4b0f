"""SIGTERM as a Failure: raised once, in the main thread, never during a clean-up, the previous handler given back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.sigterm import Interrupted, SigtermAsFailure


def sigterm():
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def previous():
    """A handler of our own in place before each test, so that a SIGTERM never ends the test run."""
    received = []
    before = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    yield received
    signal.signal(signal.SIGTERM, before)


def test_a_sigterm_raises_an_interrupted_failure_with_the_message(previous):
    with pytest.raises(Interrupted, match='^Interrupted by SIGTERM; nothing was published.$') as raised:
        with SigtermAsFailure('Interrupted by SIGTERM; nothing was published.'):
            sigterm()
    assert isinstance(raised.value, Failure) and previous == []


def test_only_the_first_sigterm_raises(previous):
    with SigtermAsFailure('stopped') as guard:
        with pytest.raises(Interrupted):
            sigterm()
        sigterm()
    assert guard.interrupted and previous == []


def test_no_sigterm_raises_once_a_clean_up_began(previous):
    with SigtermAsFailure('stopped') as guard:
        guard.ending()
        sigterm()
    assert previous == []


def test_the_previous_handler_is_given_back(previous):
    guard = SigtermAsFailure('stopped').install()
    guard.restore()
    guard.restore()
    sigterm()
    assert previous == [signal.SIGTERM]


def test_nothing_is_installed_outside_the_main_thread(previous):
    guards = []
    thread = threading.Thread(target=lambda: guards.append(SigtermAsFailure('stopped').install()))
    thread.start()
    thread.join()
    assert guards[0].previous is None
    sigterm()
    assert previous == [signal.SIGTERM]


# A parent that starts CHILD, says the child's pid once the child is ready, and exits at once, as async_wrapper's
# module runner does when its watcher kills it while the module escaped the process-group kill.
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
print(child.pid, child.stdout.readline().strip(), flush=True)
"""
CHILD = """
import time
from ansible_collections.kohakuriver.docker.plugins.module_utils.sigterm import die_with_parent
print(die_with_parent() if %s else 'not asked', flush=True)
time.sleep(60)
"""


def _alive(pid):
    try:
        with open('/proc/%d/stat' % pid) as handle:
            return handle.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except OSError:
        return False


def _orphan_of_an_exited_parent(asked):
    """(what the child said, its pid) once its parent has exited."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    parent = subprocess.run([sys.executable, '-c', PARENT, CHILD % asked], env=env, capture_output=True, text=True,
                            check=True, timeout=60)
    pid, said = parent.stdout.split(None, 1)
    return said.strip(), int(pid)


@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='PR_SET_PDEATHSIG is Linux only')
def test_a_process_that_asked_dies_with_its_parent_and_one_that_did_not_lives_on():
    (said_asked, asked), (said_other, other) = _orphan_of_an_exited_parent(True), _orphan_of_an_exited_parent(False)
    try:
        deadline = time.monotonic() + 10
        while _alive(asked) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (said_asked, _alive(asked), said_other, _alive(other)) == ('True', False, 'not asked', True)
    finally:
        for pid in (asked, other):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
