# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One command task on a runner: an ephemeral container of kohakuriver/<env>:base, its output streamed to the
shared logs folder as it comes, a time limit, and the container removed whatever happens."""

from __future__ import annotations

import math
import os
import posixpath
import signal
import threading
import time
import uuid

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import (
    DOCKER_ERRORS, APIError, RequestsConnectionError, RequestsTimeout, explain, inspect_container, inspect_or_none,
    remove_container,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.daemon import Daemon
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    DEFAULT_SHARED_DIR, LABEL_ENV, LABEL_MANAGED, LABEL_TASK, LABEL_TASK_DEADLINE, LABEL_TASK_OWNER, task_container_name,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.output import Tail, last_lines
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import (
    SHARED_MOUNT, RunOptions, absolute_clean, daemon_refusal_hint, positive_number, stop_timeout_of,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.sigterm import SigtermAsFailure, die_with_parent
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_sync import sync_from_source
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_orphans import (
    DEADLINE_MARGIN, daemon_identity, is_task_container, owner_label, reap, stop_and_remove,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_record import TaskRecorder, mark_cancelled, validate_task_id
from ansible_collections.kohakuriver.docker.plugins.module_utils.times import iso_milliseconds


def new_task_id():
    """Sortable and unique: UTC time of submission plus 8 random hex digits."""
    return '%s-%s' % (time.strftime('%Y%m%dT%H%M%SZ', time.gmtime()), uuid.uuid4().hex[:8])


def command_argv(command=None, argv=None):
    """The container command: a shell string runs as ['sh', '-c', command]; argv runs as given."""
    if (command is None) == (argv is None):
        raise Failure('Give the task either command (a shell string) or argv (a list), not both or neither.')
    if argv is not None:
        if not argv or not all(isinstance(arg, str) for arg in argv):
            raise Failure('argv must be a non-empty list of strings.')
        return list(argv)
    if not command.strip():
        raise Failure('command is empty.')
    return ['sh', '-c', command]


def _copy_frames(frames, outputs, tails, errors):
    """Write demultiplexed (stdout, stderr) frames to the log files as they arrive."""
    try:
        for frame in frames:
            for index, data in enumerate(frame):
                if data:
                    outputs[index].write(data)
                    outputs[index].flush()
                    tails[index].add(data)
    except Exception as exc:  # pylint: disable=broad-exception-caught
        errors.append(exc)


def recover_output_from_logs(client, container_id, outputs, tails):
    """Copy the finished container's logs when the attach stream delivered nothing at all.

    Docker 26 can end the attach of a container that exits at once before any output reaches it; the log driver
    still has every byte, so each stream is re-read from there (streamed, never buffered whole)."""
    if tails[0].total or tails[1].total:
        return
    for index, (want_stdout, want_stderr) in enumerate(((True, False), (False, True))):
        for data in client.api.logs(container_id, stdout=want_stdout, stderr=want_stderr, stream=True, follow=False):
            if data:
                outputs[index].write(data)
                tails[index].add(data)
        outputs[index].flush()


class TaskRequest(RunOptions):
    """The validated parameters of one task (state=present); building it calls no Docker API."""

    def __init__(self, params):
        super(TaskRequest, self).__init__(params)
        self.task_id = validate_task_id(params.get('task_id') or new_task_id())
        self.argv = command_argv(params.get('command'), params.get('argv'))
        self.workdir = absolute_clean(params.get('workdir') or SHARED_MOUNT, 'workdir')
        self.task_timeout = positive_number(params.get('task_timeout'), 'task_timeout (seconds)', '3600')
        self.stop_timeout = stop_timeout_of(params)
        self.log_dir = posixpath.join(self.shared_dir, 'logs', self.task_id)

    @property
    def container_name(self):
        return task_container_name(self.task_id)

    @property
    def log_files(self):
        return posixpath.join(self.log_dir, 'stdout.log'), posixpath.join(self.log_dir, 'stderr.log')

    def labels(self, now):
        """Our labels, the owner (this process) and, with a time limit, the deadline after which it is an orphan."""
        labels = {LABEL_MANAGED: 'true', LABEL_ENV: self.env, LABEL_TASK: self.task_id}
        owner = owner_label()
        if owner:
            labels[LABEL_TASK_OWNER] = owner
        if self.task_timeout is not None:
            labels[LABEL_TASK_DEADLINE] = str(int(math.ceil(now + self.task_timeout + self.stop_timeout + DEADLINE_MARGIN)))
        return labels


def _logs_in_use(spec):
    return any(os.path.lexists(path) for path in spec.log_files)


def _logs_refusal(spec):
    return Failure('Task %s already has logs in %s (an earlier task of that ID): choose another task_id, or move that '
                   'folder away first.' % (spec.task_id, spec.log_dir))


def run_task(client, spec, check_mode=False):
    """Reap orphans, sync the environment (unless told not to), run the task; return the task module's result dict."""
    die_with_parent()
    result = dict(
        changed=True, task_id=spec.task_id, env=spec.env, image=spec.image, container=spec.container_name,
        argv=spec.argv, log_dir=spec.log_dir, stdout_log=spec.log_files[0], stderr_log=spec.log_files[1], warnings=[],
    )
    try:
        result['reaped'], warnings = reap(client, spec.stop_timeout, check_mode=check_mode)
    except DOCKER_ERRORS as exc:
        raise Failure('Task %s: looking for orphaned task containers before it starts failed: %s'
                      % (spec.task_id, explain(exc)), **result)
    result['warnings'].extend(warnings)
    if inspect_container(client, spec.container_name) is not None:
        raise Failure('A container named %s already exists: task_id %s is in use; choose another.'
                      % (spec.container_name, spec.task_id), **result)
    if _logs_in_use(spec):
        raise _with_result(_logs_refusal(spec), result)
    if spec.sync:
        synced = sync_from_source(Daemon.of(client), spec.env, spec.tarball_dir, spec.state_dir, spec.sync_source,
                                  allow_stale=spec.allow_stale, signing=spec.signing, check_mode=check_mode, pin=spec.pin)
        result['warnings'].extend(synced.pop('warnings'))
        result['sync'] = synced
        result['image_id'] = synced['image_id']
    else:
        image = inspect_or_none(client, spec.image)
        if image is None:
            raise Failure('No local image %s on this runner: run with sync: true or kohakuriver.docker.image_sync first.'
                          % spec.image, **result)
        result['image_id'] = image['Id']
    if check_mode:
        result['msg'] = 'Check mode: the task would run; nothing was started.'
        return result
    shared_data = spec.mounts[0]['Source']
    if not os.path.isdir(shared_data):
        raise Failure('The shared data folder %s does not exist on this runner: mount the shared storage or set '
                      'shared_dir.' % shared_data, **result)
    recorder = TaskRecorder(spec, *daemon_identity(client))
    try:
        result.update(_run_container(client, spec, recorder))
    except Failure as failure:
        recorder.finish(failure.result, failure)
        result['warnings'].extend(recorder.warnings)
        raise _with_result(failure, result)
    recorder.finish(result)
    result['warnings'].extend(recorder.warnings)
    if result['timed_out']:
        raise Failure('Task %s timed out after %s s and was stopped (rc %s); logs in %s.'
                      % (spec.task_id, spec.task_timeout, result['rc'], spec.log_dir), **result)
    if result['oom_killed']:
        raise Failure('Task %s was killed for running out of memory (memory limit %s bytes, rc %s); logs in %s.'
                      % (spec.task_id, spec.memory, result['rc'], spec.log_dir), **result)
    if result['rc'] != 0:
        raise Failure('Task %s exited with rc %s; stderr ends: %s' % (spec.task_id, result['rc'],
                                                                      _stderr_end(result['stderr'])), **result)
    return result


def _stderr_end(text, count=3, limit=600):
    return (' | '.join(last_lines(text, count)) or '(nothing)')[-limit:]


def _with_result(failure, result):
    """The failure, carrying the task's result keys too (its own win)."""
    failure.result = dict(result, **failure.result)
    return failure


class _Step(object):
    """The operation a task is in, so that a Docker error names the task and the operation."""

    def __init__(self, spec):
        self.spec = spec
        self.name = 'create'

    def failure(self, exc):
        return Failure('Task %s: %s of container %s failed: %s'
                       % (self.spec.task_id, self.name, self.spec.container_name, explain(exc)))


def _run_container(client, spec, recorder):
    container_id = outcome = problem = None
    step = _Step(spec)
    labels = spec.labels(time.time())
    sigterm = SigtermAsFailure('Task interrupted by signal %d.' % signal.SIGTERM).install()
    try:
        try:
            container_id = client.api.create_container(
                spec.image, entrypoint=spec.argv, command=None, name=spec.container_name, working_dir=spec.workdir,
                environment=spec.environment, labels=labels, host_config=spec.host_config(client),
                user=spec.user, detach=True,
            )['Id']
        except APIError as exc:
            if getattr(exc, 'status_code', None) == 409:
                raise Failure('A container named %s already exists: task_id %s is in use; choose another.'
                              % (spec.container_name, spec.task_id))
            raise Failure('Cannot create the task container: %s%s' % (explain(exc), daemon_refusal_hint(explain(exc))))
        outcome = _attach_start_wait(client, spec, container_id, step, lambda started: recorder.start(started, labels))
        return outcome
    except Failure as failure:
        problem = failure
        raise
    except DOCKER_ERRORS as exc:
        problem = step.failure(exc)
        raise problem
    finally:
        sigterm.restore()
        if container_id:
            _removeinspect_container(client, spec, container_id, problem, outcome)


def _removeinspect_container(client, spec, container_id, problem, outcome):
    """Remove the container; when that fails, say so after the real problem (never instead of it)."""
    try:
        remove_container(client, container_id)
    except DOCKER_ERRORS as exc:
        removal = 'remove of container %s failed' % spec.container_name
        later = 'the next task on this runner, or the task module with state=absent, removes it'
        if problem is not None:
            problem.msg = '%s; %s too: %s (%s).' % (problem.msg.rstrip('.'), removal, explain(exc), later)
            problem.args = (problem.msg,)
            return
        ended = ('exited with rc %s' % outcome['rc']) if outcome else 'ended'
        raise Failure('Task %s: %s: %s (the task had %s; %s).' % (spec.task_id, removal, explain(exc), ended, later),
                      **(outcome or {}))


def _open_logs(spec):
    """Open the two log files, refusing to overwrite an earlier task's (another module of the same task_id may race)."""
    try:
        os.makedirs(spec.log_dir, exist_ok=True)
    except OSError as exc:
        raise Failure('Cannot create the log folder %s: %s.' % (spec.log_dir, exc.strerror))
    opened = []
    try:
        for path in spec.log_files:
            opened.append(open(path, 'xb'))
    except OSError as exc:
        for handle in opened:
            handle.close()
        if isinstance(exc, FileExistsError):
            raise _logs_refusal(spec)
        raise Failure('Cannot write the log file %s: %s.' % (exc.filename, exc.strerror))
    return opened


def _attach_start_wait(client, spec, container_id, step, on_start):
    tails = (Tail(), Tail())
    errors = []
    stdout, stderr = _open_logs(spec)
    with stdout, stderr:
        step.name = 'attach'
        # The daemon subscribes the attach to the streams before it answers, so nothing written after start is
        # missed; logs=True would replay the log too, and what the task wrote meanwhile would arrive twice.
        frames = client.api.attach(container_id, stdout=True, stderr=True, stream=True, logs=False, demux=True)
        reader = threading.Thread(target=_copy_frames, args=(frames, (stdout, stderr), tails, errors))
        reader.daemon = True
        reader.start()
        start_wall, started = time.time(), time.monotonic()
        step.name = 'start'
        try:
            client.api.start(container_id)
        except APIError as exc:
            raise Failure('Cannot start task %s: %s%s' % (spec.task_id, explain(exc), daemon_refusal_hint(explain(exc))))
        on_start(start_wall)
        timed_out = False
        step.name = 'wait'
        try:
            status = client.api.wait(container_id, timeout=spec.task_timeout)
        except (RequestsTimeout, RequestsConnectionError):
            if spec.task_timeout is None or time.monotonic() - started < spec.task_timeout:
                raise
            timed_out = True
            step.name = 'stop (after task_timeout)'
            client.api.stop(container_id, timeout=spec.stop_timeout)
            step.name = 'wait (after stop)'
            status = client.api.wait(container_id, timeout=spec.stop_timeout + 60)
        duration = time.monotonic() - started
        end_wall = time.time()
        reader.join(60)
        if reader.is_alive():
            frames.close()
            reader.join(5)
        step.name = 'logs'
        if not errors and not reader.is_alive():
            recover_output_from_logs(client, container_id, (stdout, stderr), tails)
    step.name = 'inspect'
    state = (inspect_container(client, container_id) or {}).get('State') or {}  # gone: removed by a cancel meanwhile
    rc = status.get('StatusCode')
    if errors:
        raise Failure('Task %s: reading its output (attach of container %s) failed: %s'
                      % (spec.task_id, spec.container_name, explain(errors[0])))
    return dict(
        rc=rc, timed_out=timed_out, oom_killed=bool(state.get('OOMKilled')),
        stdout=tails[0].text(), stderr=tails[1].text(), stdout_bytes=tails[0].total, stderr_bytes=tails[1].total,
        stdout_truncated=tails[0].truncated, stderr_truncated=tails[1].truncated,
        start=iso_milliseconds(start_wall), end=iso_milliseconds(end_wall), duration=round(duration, 3),
    )


class TaskRemoval(object):
    """The validated parameters of state=absent: the task_id whose container goes, or None for every orphan."""

    def __init__(self, params):
        self.task_id = validate_task_id(params['task_id']) if params.get('task_id') is not None else None
        self.stop_timeout = stop_timeout_of(params)
        shared_dir = absolute_clean(params.get('shared_dir') or DEFAULT_SHARED_DIR, 'shared_dir')
        self.log_dir = posixpath.join(shared_dir, 'logs', self.task_id) if self.task_id else None


def remove_tasks(client, request, check_mode=False):
    """state=absent: stop and remove the task container of task_id, or, without task_id, every orphan; logs kept."""
    task_id, stop_timeout = request.task_id, request.stop_timeout
    if task_id is None:
        reaped, warnings = reap(client, stop_timeout, check_mode=check_mode)
        return dict(changed=bool(reaped), reaped=reaped, warnings=warnings)
    name = task_container_name(task_id)
    attrs = inspect_container(client, name)
    if attrs is None:
        return dict(changed=False, task_id=task_id, container=name, reaped=[])
    if not is_task_container(attrs.get('Name'), (attrs.get('Config') or {}).get('Labels')):
        raise Failure('%s is not a task container of kohakuriver.docker (labels %s=true and %s=%s), so it is left alone.'
                      % (name, LABEL_MANAGED, LABEL_TASK, task_id))
    status = (attrs.get('State') or {}).get('Status')
    warnings = []
    if not check_mode:
        if status == 'running':
            warnings = [text for text in [mark_cancelled(request.log_dir)] if text]
        try:
            stop_and_remove(client, attrs['Id'], stop_timeout)
        except DOCKER_ERRORS as exc:
            raise Failure('Task %s: stop and remove of container %s failed: %s' % (task_id, name, explain(exc)))
    return dict(changed=True, task_id=task_id, container=name, warnings=warnings,
                reaped=[dict(container=name, task_id=task_id, status=status, reason='asked for (state=absent)')])
