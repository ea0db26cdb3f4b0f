#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: task
short_description: Run one command task in an environment on a runner
version_added: 0.1.0
description:
  - The counterpart of C(kohakuriver task submit "<command>" -t <node> --container <env>), run on the runner node.
  - Syncs the environment first with the same code and lock as M(kohakuriver.docker.image_sync) (unless O(sync=false)),
    then runs an ephemeral container C(kohakuriver-task-<task_id>) of C(kohakuriver/<env>:base) with the shared data
    folder C(<shared_dir>/shared_data) at C(/shared), work dir C(/shared) by default, and the given limits.
  - The container runs exactly O(argv), or C(sh -c <command>) for O(command); the image's entrypoint is not used, and
    nothing is pasted into another shell.
  - stdout and stderr are written to C(<shared_dir>/logs/<task_id>/stdout.log) and C(stderr.log) as they come, and
    returned (their last 64 KiB each) with the exit code and the times.
  - A non-zero exit code fails the task with the code and the end of stderr; the failed result still carries
    everything below. O(task_timeout) stops the container (C(SIGTERM), then C(SIGKILL) after O(stop_timeout)) and
    reports a timeout; an out-of-memory kill is reported only when Docker says the container was OOM-killed.
  - The container is removed afterwards whatever happened (also on failure or C(SIGTERM) of the module).
  - Each task container carries its owner (this module's process, by host name, boot ID, pid and the pid's start time)
    and, with O(task_timeout), its deadline (start + O(task_timeout) + O(stop_timeout) + 120 s), as the labels
    C(io.kohakuriver.docker.task.owner) and C(io.kohakuriver.docker.task.deadline).
  - Before it starts, every task removes the B(orphaned) task containers of its runner, those no module process will
    remove (a module killed with C(SIGKILL), or a daemon that died and came back). A task container is an orphan when
    its deadline has passed; or its owner ran on this machine (same host name and boot ID) and that process is gone,
    or the machine has booted since; or its owner ran on another machine (O(docker_host) of a remote daemon, or no
    owner label) and it has been exited for over 10 minutes. A task of another live module is never touched before
    its deadline, nor any container without the labels C(io.kohakuriver.docker.managed=true) and
    C(io.kohakuriver.docker.task) (environment containers and VPS sessions). Running orphans are stopped
    (O(stop_timeout)), then removed; their logs on the share are kept. What was removed is returned as RV(reaped) and
    issued as a warning.
  - With O(state=absent), nothing runs; the container of O(task_id) is stopped (C(SIGTERM), then C(SIGKILL) after
    the grace period O(stop_timeout)) and removed, its logs kept and its record in O(shared_dir) marked V(cancelled); or, without
    O(task_id), only the orphans are removed (what the runner role's pre-sync agent runs). This is the cancel of
    C(kohakuriver task kill); the module that ran the task then ends with the task's exit code.
  - Beside the logs, C(<shared_dir>/logs/<task_id>/task.json) records the task when its container has started and
    again when it has ended (command, start, end, status, rc, owner, deadline, the daemon that ran it), so that
    M(kohakuriver.docker.task_info) lists finished tasks as well as running ones. A record that cannot be written
    is a warning; the task runs on.
  - B(Long tasks) run under C(async) with C(poll) set to 0, then C(async_status) (see the examples). Give C(async) more
    seconds than O(task_timeout) + O(stop_timeout), so that the task's own limit ends it and the module removes its
    container. When C(async)'s limit comes first, Ansible kills the module with C(SIGKILL), and the container is then an
    orphan (its owner process is gone), which the next task on the runner and the pre-sync agent remove, and
    M(kohakuriver.docker.task_info) reports the task V(lost).
  - A O(task_id) whose log folder already holds logs is refused before any container is made, so an earlier task's
    logs are never overwritten; choose another O(task_id) or move the folder away.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.run_options
  - kohakuriver.docker.attributes
  - kohakuriver.docker.registry
attributes:
  check_mode:
    support: partial
    details:
      - The sync is checked (reports whether a load would happen) and the command is not run.
      - The orphans that would be removed are reported in RV(reaped); nothing is stopped or removed.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - With O(state=present) every run runs the command again.
      - With O(state=absent) a second run finds nothing to remove and reports no change.
options:
  state:
    description:
      - V(present) runs the task.
      - V(absent) runs nothing; it stops and removes the container of O(task_id) (logs kept), or, without O(task_id),
        the orphaned task containers of the runner (see the description).
    type: str
    choices: [present, absent]
    default: present
  env:
    description:
      - The environment; the task runs in C(kohakuriver/<env>:base).
      - Required with O(state=present).
    type: str
  command:
    description:
      - A shell command line, run as C(sh -c <command>) inside the container.
      - With O(state=present), exactly one of O(command) and O(argv) is required.
    type: str
  argv:
    description: The program and its arguments, run as given, without a shell.
    type: list
    elements: str
  task_id:
    description:
      - The task's ID (1 to 64 letters, digits, C(.), C(_), C(-)), which names the container and the log folder.
      - Defaults to a fresh unique ID (UTC time plus random digits), returned as RV(task_id).
      - An ID whose log folder C(<shared_dir>/logs/<task_id>) already holds C(stdout.log) or C(stderr.log) is refused.
      - With O(state=absent), the task whose container is stopped and removed.
    type: str
  workdir:
    description: The working directory in the container.
    type: str
    default: /shared
  environment:
    description:
      - Environment variables for the task; values are turned into strings.
      - A name given here and in O(env_file) takes the value given here.
    type: dict
  env_file:
    description:
      - A file of environment variables on the runner (the node that runs the module), as C(docker run --env-file) and
        community.docker's C(docker_container) read it - one C(KEY=VALUE) a line; blank lines and lines starting with
        C(#) are skipped, the value is the rest of the line as it is (quotes are kept). A line without C(=) is refused.
      - Its values are never returned or logged.
    type: path
  user:
    description:
      - The user the command runs as, like C(docker run --user) - V(name), V(uid), V(name:group) or V(uid:gid).
      - The image's user when not given (root for most). The log files are written by the module, not by this user.
    type: str
  privileged:
    description: Run the container privileged. Only when asked.
    type: bool
    default: false
  network:
    description: The network to join; V(none), V(host), or a network name. Docker's default bridge when not given.
    type: str
  task_timeout:
    description:
      - Seconds the command may run (a finite number greater than 0). Then the container is stopped, the task fails and
        RV(timed_out) is true.
      - Named so because O(timeout) is the shared connection option of every module of the collection (settable for
        all of them with C(module_defaults)); the C(task_submit) playbook takes it as the extra var C(timeout).
    type: float
  stop_timeout:
    description:
      - The grace period, seconds between C(SIGTERM) and C(SIGKILL), when O(task_timeout) stops the container, and when
        a task container is stopped by O(state=absent) (a cancel) or as an orphan.
    type: int
    default: 10
notes:
  - The module runs on the runner node, which must see O(shared_dir) (the logs are written by the module).
  - Deadlines are compared with the clock of whichever machine reaps, so keep the clocks of the nodes in step (NTP).
seealso:
  - module: kohakuriver.docker.image_sync
  - module: kohakuriver.docker.task_info
  - module: ansible.builtin.async_status
'''

EXAMPLES = r'''
- name: Run an analysis script from the shared folder (the seed's task submit)
  kohakuriver.docker.task:
    env: python-data-science
    command: python /shared/analyze.py

- name: Run with limits and a time limit, without a shell
  kohakuriver.docker.task:
    env: python-data-science
    argv: [python, /shared/train.py, --epochs, "10"]
    cpus: 4
    memory: 8g
    gpus: ["0", "1"]
    available_gpus: "{{ kohakuriver_gpus }}"
    shm_size: 16g
    ipc_mode: host
    ulimits: [memlock:-1:-1, stack:67108864:67108864]
    task_timeout: 3600
    environment:
      PYTHONUNBUFFERED: "1"
    mounts:
      - /scratch/datasets:/data:ro
  register: training

- name: Show where the logs are
  ansible.builtin.debug:
    msg: "{{ training.log_dir }}"

- name: Start a training of up to 10 hours in the background
  kohakuriver.docker.task:
    env: python-data-science
    command: python /shared/train.py
    task_id: train-1
    task_timeout: 36000
  async: 37000
  poll: 0
  register: training

- name: Wait for it, polling once a minute
  ansible.builtin.async_status:
    jid: "{{ training.ansible_job_id }}"
  register: trained
  until: trained.finished
  retries: 620
  delay: 60

- name: Stop a task that runs too long and remove its container (its logs stay on the share)
  kohakuriver.docker.task:
    state: absent
    task_id: my-run-1
    stop_timeout: 30

- name: Remove the task containers that no module process will remove (as the runner's pre-sync agent does)
  kohakuriver.docker.task:
    state: absent
'''

RETURN = r'''
task_id:
  description: The task's ID.
  returned: with O(state=present), and with O(state=absent) when O(task_id) is given
  type: str
  sample: 20261128T150000Z-1a2b3c4d
reaped:
  description:
    - The task containers removed before the task ran (orphans), or by O(state=absent); in check mode, those that would
      be removed. Their logs on the share are kept.
  returned: when the daemon was reached, also on failure
  type: list
  elements: dict
  contains:
    container:
      description: The container's name.
      type: str
      sample: kohakuriver-task-20261128T150000Z-1a2b3c4d
    task_id:
      description: The task it ran.
      type: str
    status:
      description: Its Docker status when found (V(running), V(exited), V(created), ...).
      type: str
    reason:
      description: Why it was removed.
      type: str
      sample: its owner process 4242 is gone
env:
  description: The environment.
  returned: with O(state=present)
  type: str
image:
  description: The image reference the task ran in.
  returned: with O(state=present)
  type: str
  sample: kohakuriver/python-data-science:base
image_id:
  description: The image ID of C(kohakuriver/<env>:base) when the task started.
  returned: with O(state=present)
  type: str
container:
  description: The name of the (removed) task container.
  returned: with O(state=present), and with O(state=absent) when O(task_id) is given
  type: str
  sample: kohakuriver-task-20261128T150000Z-1a2b3c4d
argv:
  description: The command as run in the container.
  returned: with O(state=present)
  type: list
  elements: str
  sample: [sh, -c, python /shared/analyze.py]
rc:
  description: The exit code (after a timeout, the code of the stopped process, e.g. V(137)).
  returned: when the command ran, also on failure
  type: int
  sample: 0
stdout:
  description: The standard output (its last 64 KiB; see RV(stdout_truncated)).
  returned: when the command ran, also on failure
  type: str
stderr:
  description: The standard error (its last 64 KiB; see RV(stderr_truncated)).
  returned: when the command ran, also on failure
  type: str
stdout_bytes:
  description: Bytes the task wrote to stdout in total.
  returned: when the command ran, also on failure
  type: int
stderr_bytes:
  description: Bytes the task wrote to stderr in total.
  returned: when the command ran, also on failure
  type: int
stdout_truncated:
  description: True when RV(stdout) holds only the end of the output (the log file holds all of it).
  returned: when the command ran, also on failure
  type: bool
stderr_truncated:
  description: True when RV(stderr) holds only the end of the output.
  returned: when the command ran, also on failure
  type: bool
log_dir:
  description: The task's log folder on shared storage.
  returned: with O(state=present)
  type: str
  sample: /mnt/cluster-share/logs/20261128T150000Z-1a2b3c4d
stdout_log:
  description: The stdout log file.
  returned: with O(state=present)
  type: str
stderr_log:
  description: The stderr log file.
  returned: with O(state=present)
  type: str
start:
  description: When the container was started (ISO 8601, UTC).
  returned: when the command ran, also on failure
  type: str
  sample: '2026-11-28T15:00:00.123Z'
end:
  description: When the container had exited (ISO 8601, UTC).
  returned: when the command ran, also on failure
  type: str
duration:
  description: Seconds from start to exit.
  returned: when the command ran, also on failure
  type: float
timed_out:
  description: True when O(task_timeout) stopped the task.
  returned: when the command ran, also on failure
  type: bool
oom_killed:
  description: True when Docker reports the container was killed for exceeding its memory limit.
  returned: when the command ran, also on failure
  type: bool
sync:
  description: The result of the sync before the task (see M(kohakuriver.docker.image_sync)).
  returned: when O(sync=true)
  type: dict
msg:
  description: Why nothing ran (check mode).
  returned: in check mode
  type: str
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_STOP_TIMEOUT
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import RUN_ARGUMENT_SPEC, SHARED_MOUNT
from ansible_collections.kohakuriver.docker.plugins.module_utils.task import TaskRemoval, TaskRequest, remove_tasks, run_task

ARGUMENT_SPEC = dict(
    RUN_ARGUMENT_SPEC,
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    env=dict(type='str'),
    command=dict(type='str'),
    argv=dict(type='list', elements='str'),
    task_id=dict(type='str'),
    workdir=dict(type='str', default=SHARED_MOUNT),
    environment=dict(type='dict'),
    env_file=dict(type='path'),
    user=dict(type='str'),
    privileged=dict(type='bool', default=False),
    network=dict(type='str'),
    task_timeout=dict(type='float'),
    stop_timeout=dict(type='int', default=DEFAULT_STOP_TIMEOUT),
)


def operation(module):
    if module.params['state'] == 'absent':
        request = TaskRemoval(module.params)
        return remove_tasks(client_for(module), request, module.check_mode)
    request = TaskRequest(module.params)
    return run_task(client_for(module), request, module.check_mode)


def main():
    module = new_module(ARGUMENT_SPEC, supports_check_mode=True, mutually_exclusive=[('command', 'argv')],
                        required_if=[('state', 'present', ('env',)), ('state', 'present', ('command', 'argv'), True)])
    run(module, operation)


if __name__ == '__main__':
    main()
