"""A runner daemon that dies mid-task: the task module's error names the task and the operation (and the failed
clean-up after it), and once the daemon is back, the exited container is reaped by the next task and the task ID can
be used again.

The daemon stopped is the only runner of a private test bed (private_bed.py, with a folder, network namespace prefix
and ports of this file's own, so it never meets the VPS restart test's bed), never a daemon of the shared one. That
bed's runner is a Docker 20.10 engine, like runner1; the shared bed's Docker 26 runner2 is never restarted.
"""

from __future__ import annotations

import os
import re
import time

import pytest

from private_bed import PrivateBed
from support.ansible_runs import run_module
from task_support import ModuleProcess, container_states, read, task_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration

BED = PrivateBed('/var/tmp/kr-task-restart-bed', 'kr-trs-', registry_port=5067, ssh_port=2267)


@pytest.fixture(scope='module')
def private_runner():
    """The private bed's runner; the whole bed is taken down afterwards."""
    with BED.running() as runner:
        yield runner


def test_a_daemon_dying_mid_task_is_named_and_its_container_is_reaped_once_it_is_back(private_runner, task_env):
    args = dict(env=task_env['env'], shared_dir=str(task_env['shared_dir']), state_dir=task_env['state_dir'],
                docker_host=private_runner['docker_host'])
    task_id = 'restart-%d' % (time.time() * 1000)
    container = 'kohakuriver-task-' + task_id
    running = ModuleProcess(dict(args, task_id=task_id, command='echo started; sleep 600'))
    running.wait_for_output('started\n')

    BED.stop_dockerd(private_runner['name'])
    failed = running.result()
    assert failed.get('failed') and '\n' not in failed['msg'], failed
    # dockerd stops its containers before it closes its API, so the wait may end and the removal be what fails
    assert re.match(r'Task %s: (wait|attach|inspect|logs|remove) of container %s failed: ' % (task_id, container),
                    failed['msg']), failed
    assert 'remove of container %s failed' % container in failed['msg'] and 'Docker error' not in failed['msg'], failed
    assert 'state=absent' in failed['msg'], failed
    assert failed['task_id'] == task_id and failed['log_dir'].endswith('/logs/' + task_id), failed

    assert BED.up() == private_runner
    assert container_states(private_runner['docker_host'], task_id) == {container: 'exited'}

    next_task = run_module('task', dict(args, command='echo next'))
    assert not next_task.get('failed') and next_task['rc'] == 0, next_task
    assert [entry for entry in next_task['reaped'] if entry['container'] == container] == [dict(
        container=container, task_id=task_id, status='exited',
        reason='its owner process %d is gone' % running.process.pid)], next_task['reaped']
    assert container_states(private_runner['docker_host'], task_id) == {}

    reused = run_module('task', dict(args, task_id=task_id, command='echo again'))
    assert reused.get('failed') and 'already has logs' in reused['msg'] and 'in use' not in reused['msg'], reused
    assert read(running.stdout_log) == 'started\n'
    os.rename(failed['log_dir'], failed['log_dir'] + '.interrupted')
    again = run_module('task', dict(args, task_id=task_id, command='echo again'))
    assert not again.get('failed') and again['stdout'] == 'again\n', again
