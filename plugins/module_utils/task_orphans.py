# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Task containers that no module process will remove: who owns a task container, when it is an orphan, reaping.

Every task container carries its owner (the process that runs it: host name, boot ID, pid and the pid's start time,
so a reused pid is not mistaken for it) and, with a time limit, its deadline. The orphan rule (orphan_reason) is pure;
reap() applies it to a daemon's task containers, stops the running orphans and removes them. Logs on the share are
never touched.
"""

from __future__ import annotations

import calendar
import os
import re
import socket
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import DOCKER_ERRORS, APIError, explain, remove_container
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    LABEL_MANAGED, LABEL_TASK, LABEL_TASK_DEADLINE, LABEL_TASK_OWNER, task_container_name,
)

# After a time limit, the owner stops the container (up to stop_timeout), waits for it and removes it: a deadline
# leaves it this much more, so that a reaper never races an owner that is doing its own clean-up.
DEADLINE_MARGIN = 120
# A task container whose owner runs on another machine (docker_host pointing at a remote daemon) cannot be asked
# whether its owner lives; once it has exited, its owner removes it within seconds, so after this long it is an orphan.
EXITED_GRACE = 600

_EXITED = ('exited', 'dead', 'created')
_DOCKER_TIME = re.compile(r'^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)')


def _read(path):
    try:
        with open(path) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def machine_identity():
    """'<host name>/<boot ID>' of the machine this runs on, or None when the kernel does not say its boot ID."""
    boot_id = (_read('/proc/sys/kernel/random/boot_id') or '').strip()
    host = socket.gethostname()
    if not boot_id or '/' in host:
        return None
    return '%s/%s' % (host, boot_id)


def process_start(pid):
    """The start time of a live process (clock ticks since boot, from /proc/<pid>/stat), or None when it is gone."""
    stat = _read('/proc/%d/stat' % pid)
    if not stat:
        return None
    fields = stat[stat.rfind(')') + 2:].split()  # after "pid (comm) ": state is field 3, starttime field 22
    if len(fields) < 20 or fields[0] in ('Z', 'X'):
        return None
    return fields[19]


def owner_label(machine=None, pid=None):
    """The owner label of a task container run by this process; None when this machine cannot be identified."""
    machine = machine or machine_identity()
    pid = pid or os.getpid()
    start = process_start(pid)
    if machine is None or start is None:
        return None
    return '%s/%d/%s' % (machine, pid, start)


def parse_owner(value):
    """(machine, pid, start) of an owner label, or None when there is none or it cannot be read."""
    parts = (value or '').split('/')
    if len(parts) != 4 or not parts[2].isdigit() or not parts[3].isdigit():
        return None
    return '%s/%s' % (parts[0], parts[1]), int(parts[2]), parts[3]


def is_task_container(name, labels):
    """Only containers this collection made for a task: both labels and the task name; never VPS or environments."""
    labels = labels or {}
    task_id = labels.get(LABEL_TASK)
    return bool(task_id) and labels.get(LABEL_MANAGED) == 'true' and (name or '').lstrip('/') == task_container_name(task_id)


def docker_time(text):
    """Unix seconds of a Docker timestamp ('2026-11-28T15:00:00.123456789Z'); None for Docker's zero time."""
    match = _DOCKER_TIME.match(text or '')
    if not match or match.group(1) == '0001':
        return None
    return calendar.timegm(tuple(int(part) for part in match.groups()) + (0, 0, 0))


def orphan_reason(name, labels, status, exited_at, now, machine, process_start_of, exited_grace=EXITED_GRACE):
    """Why a container is an orphan task container (a short phrase), or None when it is not one.

    status: Docker's State.Status; exited_at: unix seconds it exited (or was created, when it never started), or None;
    machine: machine_identity() of the caller (None: unknown); process_start_of(pid): the start of a live process.
    """
    if not is_task_container(name, labels):
        return None
    deadline = labels.get(LABEL_TASK_DEADLINE)
    if deadline and deadline.isdigit() and now > int(deadline):
        return 'its deadline passed'
    owner = parse_owner(labels.get(LABEL_TASK_OWNER))
    if owner is not None and machine is not None:
        owner_machine, pid, start = owner
        same_host = owner_machine.split('/')[0] == machine.split('/')[0]
        if owner_machine == machine:
            return None if process_start_of(pid) == start else 'its owner process %d is gone' % pid
        if same_host:
            return 'its owner ran before this machine last booted'
    if status in _EXITED and exited_at is not None and now - exited_at > exited_grace:
        return 'it has been %s for over %d s and its owner is elsewhere' % (status, exited_grace)
    return None


def _exited_at(client, summary):
    if summary.get('State') not in _EXITED:
        return None
    if summary.get('State') == 'created':
        return summary.get('Created')
    try:
        state = client.api.inspect_container(summary['Id']).get('State') or {}
    except APIError:
        return None
    return docker_time(state.get('FinishedAt'))


def find_orphans(client, now=None, machine=None, exclude=()):
    """[{container, task_id, status, reason, id}] of this daemon's orphan task containers."""
    now = time.time() if now is None else now
    machine = machine or machine_identity()
    found = []
    for summary in client.api.containers(all=True, filters={'label': ['%s=true' % LABEL_MANAGED, LABEL_TASK]}):
        name = (summary.get('Names') or [''])[0].lstrip('/')
        labels = summary.get('Labels') or {}
        if name in exclude or not is_task_container(name, labels):
            continue
        reason = orphan_reason(name, labels, summary.get('State'), _exited_at(client, summary), now, machine, process_start)
        if reason:
            found.append(dict(container=name, task_id=labels[LABEL_TASK], status=summary.get('State'), reason=reason,
                              id=summary['Id']))
    return found


def daemon_identity(client):
    """(name, ID) of the daemon, which task records name so that task_info tells one runner's tasks from another's."""
    try:
        info = client.api.info()
    except DOCKER_ERRORS:
        return None, None
    return info.get('Name'), info.get('ID')


def stop_and_remove(client, container_id, stop_timeout):
    """Stop a container (SIGTERM, SIGKILL after stop_timeout) and remove it; one already gone is fine."""
    try:
        client.api.stop(container_id, timeout=stop_timeout)
    except APIError as exc:
        if getattr(exc, 'status_code', None) != 404:
            raise
        return
    remove_container(client, container_id)


def reap(client, stop_timeout, check_mode=False, exclude=()):
    """Remove the orphan task containers; return (reaped [{container, task_id, status, reason}], warnings)."""
    reaped, warnings = [], []
    for orphan in find_orphans(client, exclude=exclude):
        container_id = orphan.pop('id')
        if not check_mode:
            try:
                stop_and_remove(client, container_id, stop_timeout)
            except Exception as exc:  # pylint: disable=broad-exception-caught
                warnings.append('Could not remove the orphaned task container %s: %s' % (orphan['container'], explain(exc)))
                continue
        reaped.append(orphan)
    if reaped:
        warnings.append('%s %d orphaned task container(s) (logs on the share kept): %s.' % (
            'Would remove' if check_mode else 'Removed', len(reaped),
            ', '.join('%s (%s, %s)' % (entry['container'], entry['status'], entry['reason']) for entry in reaped)))
    return reaped, warnings
