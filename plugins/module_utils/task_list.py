# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tasks of a runner, for task_info: its task containers (running, or ended and not yet removed) and the records
of its finished tasks on the share. Nothing is changed, and no sync or run code is shipped."""

from __future__ import annotations

import os
import posixpath
import shlex
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    DEFAULT_SHARED_DIR, LABEL_ENV, LABEL_MANAGED, LABEL_TASK, LABEL_TASK_DEADLINE, LABEL_TASK_OWNER, validate_env_name,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_orphans import daemon_identity, find_orphans, is_task_container
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_record import (
    RECORD_FILE, read_record, record_path, validate_task_id,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.times import iso_seconds, iso_time

STATES = ('running', 'finished', 'all')
CONTAINER_STATUSES = ('running', 'created', 'exited', 'paused', 'restarting', 'removing', 'dead')


class TaskListRequest(object):
    """The validated parameters of one task_info run: which tasks, and the shared folder whose records it reads."""

    def __init__(self, params):
        self.env = validate_env_name(params['env'], 'env') if params.get('env') else None
        self.task_id = validate_task_id(params['task_id']) if params.get('task_id') else None
        self.state = params.get('state') or 'all'
        if self.state not in STATES:
            raise Failure('state must be one of %s, not %r.' % (', '.join(STATES), self.state))
        shared_dir = params.get('shared_dir') or DEFAULT_SHARED_DIR
        if not posixpath.isabs(shared_dir):
            raise Failure('shared_dir must be an absolute path, not %r.' % (shared_dir,))
        self.logs_dir = posixpath.join(posixpath.normpath(shared_dir), 'logs')
        self.all_runners = bool(params.get('all_runners'))

    def wants(self, entry):
        return (self.env is None or entry['env'] == self.env) and (self.task_id is None or entry['task_id'] == self.task_id)


def command_line(argv):
    """The command as a person reads it: the shell string of sh -c, else the argv quoted for a shell."""
    if len(argv) == 3 and argv[:2] == ['sh', '-c']:
        return argv[2]
    return ' '.join(shlex.quote(arg) for arg in argv)


def _from_record(record, log_dir):
    entry = dict(record, command=command_line(record['argv']), log_dir=log_dir, running=False, orphaned=None,
                 deadline=iso_seconds(record['deadline']) if record['deadline'] else None)
    for field in ('format', 'daemon_id', 'cancelled'):
        entry.pop(field)
    return entry


def _from_container(summary, record, log_dir, orphaned, runner):
    """A task whose container still exists: the container's state, the rest from its record when it has one."""
    labels = summary.get('Labels') or {}
    task_id = labels[LABEL_TASK]
    if record is not None:
        entry = _from_record(record, log_dir)
    else:
        deadline = labels.get(LABEL_TASK_DEADLINE) or ''
        entry = dict(task_id=task_id, env=labels.get(LABEL_ENV), argv=None, command=summary.get('Command'),
                     image=summary.get('Image'), container=(summary.get('Names') or [''])[0].lstrip('/'), rc=None,
                     started=iso_time(summary.get('Created')), finished=None, duration=None,
                     owner=labels.get(LABEL_TASK_OWNER), deadline=iso_seconds(int(deadline)) if deadline.isdigit() else None,
                     stdout_log=None, stderr_log=None, log_dir=None, runner=None, msg=None)
    state = summary.get('State')
    entry.update(status=state if state in CONTAINER_STATUSES else 'unknown', running=state == 'running', orphaned=orphaned,
                 runner=runner)
    return entry


def _record_of(logs_dir, task_id, warnings):
    """The record of task_id on the share, or None (none there; a broken one is a warning)."""
    path = record_path(posixpath.join(logs_dir, task_id))
    if not os.path.isfile(path):
        return None
    try:
        return read_record(path)
    except Failure as failure:
        warnings.append(failure.msg)
        return None


def _recorded_task_ids(request):
    """The task IDs whose folder in the logs folder holds a record (only task_id's, when one is asked for)."""
    if request.task_id is not None:
        return [request.task_id]
    try:
        entries = list(os.scandir(request.logs_dir))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise Failure('Cannot list the task logs folder %s: %s.' % (request.logs_dir, exc.strerror))
    return sorted(entry.name for entry in entries
                  if entry.is_dir(follow_symlinks=False) and os.path.isfile(posixpath.join(entry.path, RECORD_FILE)))


def list_tasks(client, request, now=None):
    """The runner's tasks (containers and records), oldest first; see the task_info module for every field."""
    warnings = []
    runner, daemon_id = daemon_identity(client)
    filters = {'label': ['%s=true' % LABEL_MANAGED, LABEL_TASK if request.task_id is None else '%s=%s' % (LABEL_TASK, request.task_id)]}
    if request.env:
        filters['label'].append('%s=%s' % (LABEL_ENV, request.env))
    containers = [summary for summary in client.api.containers(all=True, filters=filters)
                  if is_task_container((summary.get('Names') or [''])[0], summary.get('Labels'))]
    orphans = dict((orphan['task_id'], orphan['reason']) for orphan in find_orphans(client, now=now)) if containers else {}
    tasks = {}
    for summary in containers:
        task_id = summary['Labels'][LABEL_TASK]
        record = _record_of(request.logs_dir, task_id, warnings)
        log_dir = posixpath.join(request.logs_dir, task_id)
        tasks[task_id] = _from_container(summary, record, log_dir, orphans.get(task_id), runner)
    if request.state != 'running':
        for task_id in _recorded_task_ids(request):
            if task_id in tasks:
                continue
            record = _record_of(request.logs_dir, task_id, warnings)
            if record is None or not (request.all_runners or (daemon_id is not None and record['daemon_id'] == daemon_id)):
                continue
            entry = _from_record(record, posixpath.join(request.logs_dir, task_id))
            if entry['status'] == 'running' and record['daemon_id'] == daemon_id:
                entry.update(status='lost', msg='Its container is gone but no module recorded an end: the module was '
                                                'killed (SIGKILL, async timeout) and the container was reaped.')
            tasks[task_id] = entry
    found = [entry for entry in tasks.values() if request.wants(entry)
             and (request.state == 'all' or (request.state == 'running') == (entry['status'] in CONTAINER_STATUSES))]
    found.sort(key=lambda entry: (entry['started'] or '', entry['task_id']))
    return dict(changed=False, tasks=found, runner=runner, warnings=warnings,
                checked_at=iso_seconds(time.time() if now is None else now))
