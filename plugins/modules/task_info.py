#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: task_info
short_description: List the running and finished tasks of a runner
version_added: 0.2.0
description:
  - The counterpart of C(kohakuriver task status) and C(task list). Lists the tasks of one runner's Docker daemon
    that M(kohakuriver.docker.task) ran, with their ID, environment, command, start and end, status, exit code, log
    files, owner and deadline.
  - B(Running) tasks are the task containers C(kohakuriver-task-<task_id>) on the daemon (running, or ended and not yet
    removed by their module). Each says whether it is an orphan (RV(tasks[].orphaned)), by the rule of
    M(kohakuriver.docker.task), which removes orphans before every task and with O(kohakuriver.docker.task#module:state=absent).
  - B(Finished) tasks are read from the task records C(<shared_dir>/logs/<task_id>/task.json) that
    M(kohakuriver.docker.task) writes when a task starts and when it ends, since their containers are gone. A record
    names the daemon that ran the task; only this daemon's are listed, unless O(all_runners=true). A record that
    says running while this daemon has no container of it is reported as V(lost) (its module was killed, for
    example by an C(async) timeout, and its container was reaped).
  - A record that cannot be read or is not valid is skipped with a warning; the others are listed.
  - Never changes anything. Stop a task with M(kohakuriver.docker.task) O(kohakuriver.docker.task#module:state=absent).
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.attributes
  - kohakuriver.docker.attributes.info_module
options:
  task_id:
    description: Only this task.
    type: str
  env:
    description: Only tasks of this environment.
    type: str
  state:
    description:
      - V(running) lists the tasks that have a container on the daemon; V(finished) those that have none any more
        (their records); V(all) both.
    type: str
    choices: [all, running, finished]
    default: all
  shared_dir:
    description: The shared folder whose C(logs) folder holds the task records (as the O(kohakuriver.docker.task#module:shared_dir) of the task).
    type: path
    default: /mnt/cluster-share
  all_runners:
    description: List the finished tasks of every runner found in the records, not only this daemon's.
    type: bool
    default: false
seealso:
  - module: kohakuriver.docker.task
'''

EXAMPLES = r'''
- name: List the tasks of the runner
  kohakuriver.docker.task_info:
  register: found

- name: Show the running ones
  ansible.builtin.debug:
    msg: "{{ found.tasks | selectattr('running') | map(attribute='task_id') | list }}"

- name: Look at one task (as kohakuriver task status <id>)
  kohakuriver.docker.task_info:
    task_id: my-run-1
  register: one
'''

RETURN = r'''
tasks:
  description: The tasks, oldest first. Empty when there are none.
  returned: always
  type: list
  elements: dict
  contains:
    task_id:
      description: The task's ID.
      type: str
      sample: 20261128T150000Z-1a2b3c4d
    env:
      description: The environment.
      type: str
    command:
      description: The command as a person reads it (the shell string of a O(kohakuriver.docker.task#module:command)).
      type: str
      sample: python /shared/analyze.py
    argv:
      description: The command as run in the container; null for a container without a record.
      type: list
      elements: str
    image:
      description: The image the task ran in.
      type: str
    container:
      description: The task container's name (removed when the task ended).
      type: str
    status:
      description:
        - With a container, Docker's state (V(running), V(exited), V(created), ...).
        - Without one, the recorded outcome, V(succeeded), V(failed), V(timed_out), V(oom_killed), V(cancelled)
          (stopped with O(kohakuriver.docker.task#module:state=absent)), V(interrupted) (its module got C(SIGTERM)),
          or V(lost) (see the description).
      type: str
      sample: succeeded
    running:
      description: Whether the task's container runs.
      type: bool
    rc:
      description: The exit code, when the task ended and its module recorded it.
      type: int
    started:
      description: When the task started (UTC, ISO 8601).
      type: str
      sample: '2026-11-28T15:00:00.123Z'
    finished:
      description: When it ended (UTC, ISO 8601), or null.
      type: str
    duration:
      description: Seconds from start to end, or null.
      type: float
    log_dir:
      description: The task's log folder on the share.
      type: str
    stdout_log:
      description: Its stdout log file.
      type: str
    stderr_log:
      description: Its stderr log file.
      type: str
    owner:
      description: The module process that runs or ran it (C(<host>/<boot id>/<pid>/<start ticks>)).
      type: str
    deadline:
      description: After this time (UTC) its container is an orphan whatever its owner; null without a time limit.
      type: str
    orphaned:
      description: Why its container is an orphan (the next task or the pre-sync agent removes it), or null.
      type: str
    runner:
      description: The name of the daemon that ran it (Docker's C(Name), the runner's host name).
      type: str
    msg:
      description: What stopped the task, when something did.
      type: str
runner:
  description: The name of this daemon (Docker's C(Name)).
  returned: always
  type: str
checked_at:
  description: When the list was made (UTC).
  returned: always
  type: str
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_SHARED_DIR
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_list import TaskListRequest, list_tasks

ARGUMENT_SPEC = dict(
    task_id=dict(type='str'),
    env=dict(type='str'),
    state=dict(type='str', choices=['all', 'running', 'finished'], default='all'),
    shared_dir=dict(type='path', default=DEFAULT_SHARED_DIR),
    all_runners=dict(type='bool', default=False),
)


def operation(module):
    request = TaskListRequest(module.params)
    return list_tasks(client_for(module), request)


def main():
    run(new_module(ARGUMENT_SPEC, supports_check_mode=True), operation)


if __name__ == '__main__':
    main()
