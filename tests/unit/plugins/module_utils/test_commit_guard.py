"""The stop/commit/restart sequence as one unit: whatever fails or interrupts it, the container runs again, or the
marker stays for the next run and the failure says so."""

from __future__ import annotations

import json
import os
import signal
import threading
import types

import pytest
from docker.errors import APIError

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import explain
from ansible_collections.kohakuriver.docker.plugins.module_utils.commit_guard import CommitGuard, recover_stopped
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.sigterm import Interrupted, SigtermAsFailure

NAME = 'kohakuriver-env-my-env'


def api_error(status, text):
    return APIError(text, response=types.SimpleNamespace(status_code=status, url='http://docker/', reason=text), explanation=text)


class Api(object):
    """A daemon with one container: records every call, fails the calls told to."""

    def __init__(self, running=True):
        self.running = running
        self.calls = []
        self.fail = {}
        self.lock = threading.Lock()

    def _call(self, name):
        with self.lock:
            self.calls.append(name)
        problem = self.fail.get(name)
        if isinstance(problem, list):
            problem = problem.pop(0) if problem else None
        if callable(problem) and not isinstance(problem, BaseException):
            problem = problem()
        if problem is not None:
            raise problem

    def stop(self, container_id, timeout=None):
        assert container_id == 'c1' and timeout == 7
        self._call('stop')
        self.running = False

    def start(self, container_id):
        assert container_id == 'c1'
        self._call('start')
        self.running = True

    def inspect_container(self, container_id):
        self._call('inspect')
        return {'Id': container_id, 'State': {'Running': self.running}}


def commit_of(api, image_id='sha256:new'):
    def commit():
        api._call('commit')
        return {'Id': image_id}
    return commit


def as_step_failure(exc):
    """Like packaging's: a Failure as it is, a Docker or disk error as a Failure naming it, anything else as it is."""
    if isinstance(exc, Failure):
        return exc
    return Failure('Packaging failed: %s.' % explain(exc)) if isinstance(exc, (APIError, OSError)) else None


@pytest.fixture
def marker(tmp_path):
    return str(tmp_path / '.my-env.restart')


def guard_for(api, marker, **kwargs):
    steps = []
    kwargs.setdefault('as_failure', as_step_failure)
    guard = CommitGuard(types.SimpleNamespace(api=api), 'c1', NAME, marker, 7, on_step=steps.append, **kwargs)
    return guard, steps


def test_a_stopped_commit_stops_commits_and_starts_again_and_drops_the_marker(marker):
    api = Api()
    guard, steps = guard_for(api, marker)
    with guard.awaiting_restart():
        assert guard.commit(commit_of(api), stop=True) == {'Id': 'sha256:new'}
        assert json.load(open(marker)) == {'container_id': 'c1'}
        guard.require_restarted()
        assert not os.path.exists(marker)
    assert api.calls == ['stop', 'commit', 'start'] and api.running
    assert steps == ['stopping %s for its commit' % NAME, 'committing %s' % NAME]


def test_a_commit_without_stop_touches_nothing_else(marker):
    api = Api()
    guard, steps = guard_for(api, marker)
    with guard.awaiting_restart():
        guard.commit(commit_of(api), stop=False, trial=True)
    assert api.calls == ['commit'] and not os.path.exists(marker)
    assert steps == ['committing %s for a trial comparison' % NAME]


def test_a_failed_commit_starts_the_container_again_at_once(marker):
    api = Api()
    api.fail['commit'] = api_error(500, 'no space left on device')
    guard, _steps = guard_for(api, marker)
    with pytest.raises(Failure, match='^Packaging failed: no space left on device.$'):
        guard.commit(commit_of(api), stop=True)
    # The second stop waits for a stop still going on in the daemon, so the start comes after it.
    assert api.calls == ['stop', 'commit', 'stop', 'start'] and api.running
    assert not os.path.exists(marker)


def test_a_failed_stop_starts_the_container_again(marker):
    api = Api()
    api.fail['stop'] = [api_error(500, 'stop timed out'), None]
    guard, _steps = guard_for(api, marker)
    with pytest.raises(Failure, match='stop timed out'):
        guard.commit(commit_of(api), stop=True)
    assert api.calls == ['stop', 'stop', 'start'] and api.running and not os.path.exists(marker)


def test_a_start_that_fails_after_a_failed_commit_is_told_and_keeps_the_marker(marker):
    api = Api()
    api.fail['commit'] = api_error(500, 'commit broke')
    api.fail['start'] = api_error(500, 'cannot start')
    guard, _steps = guard_for(api, marker)
    with pytest.raises(Failure) as raised:
        guard.commit(commit_of(api), stop=True)
    assert raised.value.msg == 'Packaging failed: commit broke. The container could not be started again either: cannot start'
    assert os.path.exists(marker)


def test_an_error_that_is_no_failure_is_raised_as_it_is_after_the_start(marker):
    api = Api()
    api.fail['commit'] = KeyError('a bug')
    guard, _steps = guard_for(api, marker)
    with pytest.raises(KeyError):
        guard.commit(commit_of(api), stop=True)
    assert api.calls[-1] == 'start' and api.running


def test_a_sigterm_during_the_commit_starts_the_container_again_and_a_second_one_is_ignored(marker):
    api = Api()
    api.fail['commit'] = lambda: os.kill(os.getpid(), signal.SIGTERM)
    api.fail['stop'] = [None, lambda: os.kill(os.getpid(), signal.SIGTERM)]
    before = signal.getsignal(signal.SIGTERM)
    try:
        with SigtermAsFailure('Interrupted by SIGTERM; nothing was published.') as sigterm:
            guard, _steps = guard_for(api, marker, sigterm=sigterm)
            with pytest.raises(Interrupted, match='^Interrupted by SIGTERM; nothing was published.$'):
                guard.commit(commit_of(api), stop=True)
    finally:
        signal.signal(signal.SIGTERM, before)
    assert api.calls == ['stop', 'commit', 'stop', 'start'] and api.running and not os.path.exists(marker)


def test_a_failed_restart_after_the_commit_fails_the_publish_and_keeps_the_marker(marker):
    api = Api()
    api.fail['start'] = api_error(500, 'port is already allocated')
    guard, _steps = guard_for(api, marker)
    with pytest.raises(Failure, match='^Committed %s but could not start it again: port is already allocated. Nothing was '
                                      'published.$' % NAME):
        with guard.awaiting_restart():
            guard.commit(commit_of(api), stop=True)
            guard.require_restarted()
    assert os.path.exists(marker)


def test_what_fails_after_the_commit_waits_for_the_start_and_tells_when_it_failed(marker):
    api = Api()
    started = threading.Event()
    api.fail['start'] = lambda: started.wait(5) and api_error(500, 'cannot start')
    guard, _steps = guard_for(api, marker)
    with pytest.raises(Failure) as raised:
        with guard.awaiting_restart():
            guard.commit(commit_of(api), stop=True)
            started.set()
            raise OSError('disk full')
    assert raised.value.msg == 'Packaging failed: disk full. The container could not be started again either: cannot start'
    assert guard.restart is None


def test_leaving_normally_waits_for_the_start(marker):
    api = Api()
    release = threading.Event()
    api.fail['start'] = lambda: release.wait(5) and None
    guard, _steps = guard_for(api, marker)
    with guard.awaiting_restart():
        guard.commit(commit_of(api), stop=True)
        release.set()
    assert guard.restart is None and api.running and not os.path.exists(marker)


def write_marker(marker):
    with open(marker, 'w') as handle:
        json.dump({'container_id': 'c1'}, handle)


def test_without_a_marker_there_is_nothing_to_recover(marker):
    api = Api(running=False)
    assert recover_stopped(types.SimpleNamespace(api=api), marker) is None and api.calls == []


@pytest.mark.parametrize('running, started', [(False, True), (True, False)])
def test_a_marker_left_by_a_killed_run_starts_its_container(marker, running, started):
    api = Api(running=running)
    write_marker(marker)
    assert recover_stopped(types.SimpleNamespace(api=api), marker) is started
    assert api.running and not os.path.exists(marker)


def test_a_marker_of_a_container_gone_is_dropped_and_another_error_keeps_it(marker):
    api = Api()
    write_marker(marker)
    api.fail['inspect'] = api_error(500, 'the daemon broke')
    with pytest.raises(APIError):
        recover_stopped(types.SimpleNamespace(api=api), marker)
    assert os.path.exists(marker)
    api.fail['inspect'] = api_error(404, 'No such container: c1')
    assert recover_stopped(types.SimpleNamespace(api=api), marker) is False
    assert not os.path.exists(marker)
