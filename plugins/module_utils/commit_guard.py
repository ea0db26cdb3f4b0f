# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container committed and running again afterwards, whatever happens: stop it, commit it, start it again.

CommitGuard.commit() stops the container (when asked), commits it and starts it again on a thread, so that what
follows the commit (the save) does not wait for the start; awaiting_restart() wraps what follows, so that no exit,
a failure or a SIGTERM (sigterm.py) included, leaves before that start has ended. When the stop or the commit fails
or is interrupted, the container is started again at once. A marker file names the stopped container until it runs
again: a run killed meanwhile (SIGKILL), or whose start failed, leaves it, and the next run starts the container it
names (recover_stopped).
"""

from __future__ import annotations

import contextlib
import json
import threading

from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.client import DOCKER_ERRORS, APIError, explain
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

_TRANSPORT_ERRORS = DOCKER_ERRORS + (OSError, ValueError)


def _failures_only(exc):
    return exc if isinstance(exc, Failure) else None


class _Restart(object):
    """Starting again, on a thread, a container stopped for its commit (or what replaces that start: then(), which
    raises when it fails); wait() says whether it worked."""

    def __init__(self, client, container_id, then=None):
        self.problem = None
        self.thread = threading.Thread(target=self._start, args=(then or (lambda: client.api.start(container_id)),),
                                       name='restart')
        self.thread.daemon = True
        self.thread.start()

    def _start(self, start):
        try:
            start()
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self.problem = exc.msg if isinstance(exc, Failure) else explain(exc)

    def wait(self):
        """None once the container was started, else why it could not be."""
        self.thread.join()
        return self.problem


class CommitGuard(object):
    """The commits of one container (name: its name, for messages), each leaving it as it was found.

    marker: the file naming the container while it is stopped. sigterm: the run's SigtermAsFailure, told when a
    clean-up begins. as_failure(exc): the Failure to raise for an error (None to raise the error itself); a
    failed start is added to its message. on_step(text): called with what is being done, for the caller's messages.
    """

    def __init__(self, client, container_id, name, marker, stop_timeout, sigterm=None, as_failure=_failures_only,
                 on_step=None):
        self.client = client
        self.container_id = container_id
        self.name = name
        self.marker = marker
        self.stop_timeout = stop_timeout
        self.sigterm = sigterm
        self.as_failure = as_failure
        self.on_step = on_step or (lambda text: None)
        self.restart = None

    def commit(self, commit, stop, trial=False, then=None):
        """What commit() (the daemon's commit of the container) returns; with stop, the container is stopped before
        it and started again after it. trial: a commit only compared, never published (named so in messages).
        then(committed): run on the thread in place of that start (stop or not); it raises when it fails, having
        left the container as it was (continuation.py)."""
        if stop:
            store.write_json_atomically(self.marker, dict(container_id=self.container_id), 0o644)
        try:
            if stop:
                self.on_step('stopping %s for its commit' % self.name)
                self.client.api.stop(self.container_id, timeout=self.stop_timeout)
            self.on_step('committing %s%s' % (self.name, ' for a trial comparison' if trial else ''))
            committed = commit()
            if stop or then is not None:
                self.restart = _Restart(self.client, self.container_id, then and (lambda: then(committed)))
        except BaseException as exc:
            self.ending()
            failure = self.as_failure(exc)
            if stop and self.restart is None:
                self._start_after_failure(failure)
            if failure is not None and failure is not exc:
                raise failure
            raise
        return committed

    def ending(self):
        """The run is failing: from now on a SIGTERM would only break off the clean-up, so it is not raised."""
        if self.sigterm is not None:
            self.sigterm.ending()

    def wait_for_restart(self):
        """Wait for the start commit() began: None once the container runs again (or none was begun), else why not."""
        restart, self.restart = self.restart, None
        if restart is None:
            return None
        problem = restart.wait()
        if problem is None:
            store.remove_quietly(self.marker)
        return problem

    def require_restarted(self):
        """Wait for the start commit() began; a Failure when it failed."""
        problem = self.wait_for_restart()
        if problem:
            raise Failure('Committed %s but could not start it again: %s. Nothing was published.' % (self.name, problem))

    @contextlib.contextmanager
    def awaiting_restart(self):
        """Whatever happens inside, leave only once the start commit() began has ended; report a failed start."""
        try:
            yield
        except BaseException as exc:
            self.ending()
            failure = self.as_failure(exc)
            problem = self.wait_for_restart()
            if problem and failure is not None:
                failure.msg += ' The container could not be started again either: %s' % problem
            if failure is not None and failure is not exc:
                raise failure
            raise
        finally:
            self.wait_for_restart()

    def _start_after_failure(self, failure):
        """Start the container again after its stop or commit failed or was interrupted.

        An interrupted stop goes on in the daemon: stop waits for it to end (at once when it has), so the start
        comes after it and the container is not left exited. A failed start keeps the marker for the next run.
        """
        try:
            self.client.api.stop(self.container_id, timeout=self.stop_timeout)
            self.client.api.start(self.container_id)
            store.remove_quietly(self.marker)
        except _TRANSPORT_ERRORS as start_exc:
            if failure is not None:
                failure.msg += ' The container could not be started again either: %s' % explain(start_exc)


def recover_stopped(client, marker):
    """Start the container a killed run stopped for its commit (marker names it), then remove the marker.

    None when there is no marker, else whether the container had to be started (True) or ran already, or is gone.
    """
    try:
        with open(marker) as handle:
            container_id = json.load(handle).get('container_id')
    except (OSError, ValueError):
        return None
    started = False
    try:
        state = client.api.inspect_container(container_id)['State']
        if not state.get('Running'):
            client.api.start(container_id)
            started = True
    except APIError as exc:
        if getattr(exc, 'status_code', None) != 404:
            raise
    store.remove_quietly(marker)
    return started
