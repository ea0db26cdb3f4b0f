# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The task record <shared_dir>/logs/<task_id>/task.json: what task_info tells of a task once its container is gone.

The task module writes it when the container has started (status running) and again when the task has ended (its
outcome); state=absent marks a running one cancelled. Each write goes to a temporary file renamed over the record, so
a reader never sees half of one. Anyone can write on the share, so read_record type-checks every field.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
import re
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import LABEL_TASK_DEADLINE, LABEL_TASK_OWNER
from ansible_collections.kohakuriver.docker.plugins.module_utils.sigterm import Interrupted
from ansible_collections.kohakuriver.docker.plugins.module_utils.times import iso_milliseconds

RECORD_FILE = 'task.json'
RECORD_FORMAT = 1
FINAL_STATUSES = ('succeeded', 'failed', 'timed_out', 'oom_killed', 'cancelled', 'interrupted')
STATUSES = ('running',) + FINAL_STATUSES
_TASK_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,63}')
_NUMBER = (int, float)
_FIELDS = dict(
    format=(int,), task_id=(str,), env=(str,), argv=(list,), image=(str,), container=(str,), runner=(str, type(None)),
    daemon_id=(str, type(None)), status=(str,), rc=(int, type(None)), started=(str,), finished=(str, type(None)),
    duration=_NUMBER + (type(None),), owner=(str, type(None)), deadline=(int, type(None)), stdout_log=(str,),
    stderr_log=(str,), cancelled=(bool,), msg=(str, type(None)),
)


def validate_task_id(task_id):
    if not isinstance(task_id, str) or not _TASK_ID.fullmatch(task_id):
        raise Failure('task_id %r is not valid: use 1 to 64 letters, digits, ".", "_" or "-", starting with a letter '
                      'or digit.' % (task_id,))
    return task_id


def record_path(log_dir):
    return posixpath.join(log_dir, RECORD_FILE)


def write_record(log_dir, record):
    """Replace the record in log_dir at once (a temporary file beside it, then a rename)."""
    path = record_path(log_dir)
    temporary = '%s.%d.tmp' % (path, os.getpid())
    try:
        with open(temporary, 'w') as handle:
            json.dump(record, handle, sort_keys=True)
            handle.write('\n')
        os.replace(temporary, path)
    finally:
        if os.path.lexists(temporary):
            os.unlink(temporary)


def read_record(path):
    """The record at path, every field checked; Failure (one line) when it is not a record this collection writes."""
    try:
        with open(path) as handle:
            record = json.load(handle)
    except (OSError, ValueError) as exc:
        raise Failure('Cannot read the task record %s: %s.' % (path, getattr(exc, 'strerror', None) or exc))
    if not isinstance(record, dict) or record.get('format') != RECORD_FORMAT:
        raise Failure('%s is not a task record of format %d.' % (path, RECORD_FORMAT))
    for field, types in _FIELDS.items():
        if not isinstance(record.get(field), types) or (types == (int,) and isinstance(record.get(field), bool)):
            raise Failure('The task record %s has no valid %s (%r).' % (path, field, record.get(field)))
    if isinstance(record['duration'], float) and not math.isfinite(record['duration']):
        raise Failure('The task record %s has no valid duration (%r).' % (path, record['duration']))
    if record['status'] not in STATUSES or not all(isinstance(arg, str) for arg in record['argv']):
        raise Failure('The task record %s has an unknown status %r or a command that is not strings.'
                      % (path, record['status']))
    if posixpath.basename(posixpath.dirname(path)) != record['task_id']:
        raise Failure('The task record %s is of task %r, not of its folder.' % (path, record['task_id']))
    return {field: record[field] for field in _FIELDS}


def final_status(outcome, failure=None):
    """The status a task ended with: outcome holds what ran (rc, timed_out, oom_killed), failure what stopped it."""
    if outcome.get('timed_out'):
        return 'timed_out'
    if outcome.get('oom_killed'):
        return 'oom_killed'
    if outcome.get('rc') == 0 and failure is None:
        return 'succeeded'
    if isinstance(failure, Interrupted):
        return 'interrupted'
    return 'failed'


class TaskRecorder(object):
    """Writes one task's record: start() once the container runs, finish() when the task ended. A record that cannot
    be written is a warning (the task itself and its logs matter more)."""

    def __init__(self, spec, runner=None, daemon_id=None):
        self.spec = spec
        self.record = None
        self.warnings = []
        self.identity = dict(runner=runner, daemon_id=daemon_id)

    def start(self, started, labels):
        spec = self.spec
        deadline = labels.get(LABEL_TASK_DEADLINE)
        self.record = dict(
            self.identity, format=RECORD_FORMAT, task_id=spec.task_id, env=spec.env, argv=spec.argv, image=spec.image,
            container=spec.container_name, status='running', rc=None, started=iso_milliseconds(started), finished=None,
            duration=None, owner=labels.get(LABEL_TASK_OWNER), deadline=int(deadline) if deadline else None,
            stdout_log=spec.log_files[0], stderr_log=spec.log_files[1], cancelled=False, msg=None,
        )
        self._write()

    def finish(self, outcome, failure=None):
        """The outcome of a task that started; a cancel written meanwhile (state=absent) stays a cancel."""
        if self.record is None:
            return
        try:
            cancelled = read_record(record_path(self.spec.log_dir))['cancelled']
        except Failure:
            cancelled = False
        self.record.update(
            status='cancelled' if cancelled else final_status(outcome, failure), cancelled=cancelled,
            rc=outcome.get('rc'), finished=outcome.get('end') or iso_milliseconds(time.time()),
            duration=outcome.get('duration'), msg=failure.msg if failure is not None else None,
        )
        self._write()

    def _write(self):
        try:
            write_record(self.spec.log_dir, self.record)
        except OSError as exc:
            self.warnings.append('Could not write the task record %s: %s.' % (record_path(self.spec.log_dir), exc.strerror))


def mark_cancelled(log_dir, now=None):
    """state=absent stops a task: its record (when there is one, still running) says so. Returns a warning or None."""
    path = record_path(log_dir)
    if not os.path.exists(path):
        return None
    try:
        record = read_record(path)
        if record['status'] != 'running':
            return None
        record.update(status='cancelled', cancelled=True, finished=iso_milliseconds(time.time() if now is None else now),
                      msg='Cancelled (state=absent).')
        write_record(log_dir, record)
    except Failure as failure:
        return 'The task record was not marked cancelled: %s' % failure.msg
    except OSError as exc:
        return 'Could not mark the task record %s cancelled: %s.' % (path, exc.strerror)
    return None
