"""SIGTERM as a Failure: raised once, in the main thread, never during a clean-up, the previous handler given back."""

from __future__ import annotations

import os
import signal
import threading

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
