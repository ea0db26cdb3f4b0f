"""Task containers are never left behind: one whose module was SIGKILLed is reaped by the next task on its runner and
by state=absent, and a running task of another live module is never touched. Both runner engines."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import docker
import pytest

from reaper_races import claimed, still_running, unless_preempted
from support.ansible_runs import run_module, warnings_of
from task_support import ModuleProcess, container_states, on_runner, read, task_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


def new_id(word):
    return '%s-%d' % (word, time.time() * 1000)


@contextlib.contextmanager
def removed_afterwards(docker_host, *task_ids):
    """Whatever the test leaves of these tasks' containers is removed, also when an assertion failed."""
    try:
        yield
    finally:
        with contextlib.closing(docker.DockerClient(base_url=docker_host, version='auto', timeout=120)) as client:
            for task_id in task_ids:
                for container in client.containers.list(all=True, filters={'name': '^kohakuriver-task-%s$' % task_id}):
                    container.remove(force=True)


def killed_mid_task(args, task_id):
    """A task whose module process got SIGKILL while the task ran: its container is left running."""
    module = ModuleProcess(dict(args, task_id=task_id, command='echo started; sleep 600'))
    module.wait_for_output('started\n')
    module.kill()
    return module


def live_task(args, task_id):
    """A task that runs until the test lets it finish (finish(live)), so no timing decides what the test sees."""
    module = ModuleProcess(dict(args, task_id=task_id, command='echo started; until [ -e /shared/%s.go ]; do sleep 0.2; '
                                                               'done; echo done' % task_id))
    module.wait_for_output('started\n')
    return module


def finish(args, module):
    with open(os.path.join(args['shared_dir'], 'shared_data', module.args['task_id'] + '.go'), 'w'):
        pass
    return module.result()


def test_a_killed_module_leaves_its_container_and_the_next_task_reaps_it(on_runner):
    def scenario(attempt):
        orphan_id = new_id('orphan%d' % attempt)
        with removed_afterwards(on_runner['docker_host'], orphan_id):
            killed = killed_mid_task(on_runner, orphan_id)
            still_running(on_runner['docker_host'], orphan_id)

            next_task = run_module('task', dict(on_runner, command='echo next'))
            assert not next_task.get('failed') and next_task['rc'] == 0, next_task
            reaped = [entry for entry in next_task['reaped'] if entry['task_id'] == orphan_id]
            claimed(reaped, on_runner['docker_host'], orphan_id, next_task)
            assert reaped == [dict(container='kohakuriver-task-' + orphan_id, task_id=orphan_id, status='running',
                                   reason=reaped[0]['reason'])], next_task['reaped']
            assert reaped[0]['reason'].startswith('its owner process %d is gone' % killed.process.pid)
            assert any('Removed' in text and 'kohakuriver-task-' + orphan_id in text for text in warnings_of(next_task))
            assert container_states(on_runner['docker_host'], orphan_id) == {}
            assert read(killed.stdout_log) == 'started\n'  # the logs on the share are kept

            again = run_module('task', dict(on_runner, command='true'))
            assert not [entry for entry in again['reaped'] if entry['task_id'] == orphan_id], again
    unless_preempted(scenario)


def test_a_running_task_of_another_live_module_is_left_alone(on_runner):
    live_id = new_id('live')
    with removed_afterwards(on_runner['docker_host'], live_id):
        live = live_task(on_runner, live_id)
        second = run_module('task', dict(on_runner, command='echo second'))
        assert not second.get('failed') and second['rc'] == 0, second
        assert live_id not in [entry['task_id'] for entry in second['reaped']], second
        assert container_states(on_runner['docker_host'], live_id) == {'kohakuriver-task-' + live_id: 'running'}
        finished = finish(on_runner, live)
        assert not finished.get('failed') and finished['rc'] == 0 and finished['stdout'] == 'started\ndone\n', finished


def test_state_absent_removes_only_orphans_and_reports_them_in_check_mode_first(on_runner):
    def scenario(attempt):
        orphan_id, live_id = new_id('orphan%d' % attempt), new_id('live%d' % attempt)
        with removed_afterwards(on_runner['docker_host'], orphan_id, live_id):
            live = live_task(on_runner, live_id)
            killed_mid_task(on_runner, orphan_id)  # after the live task started: its own start would reap the orphan
            connection = dict(docker_host=on_runner['docker_host'], stop_timeout=1)

            checked = run_module('task', dict(connection, state='absent'), check=True)
            checked_ids = [entry['task_id'] for entry in checked['reaped']]
            claimed(orphan_id in checked_ids, on_runner['docker_host'], orphan_id, checked)
            assert checked['changed'] and live_id not in checked_ids, checked
            still_running(on_runner['docker_host'], orphan_id)

            reaped = run_module('task', dict(connection, state='absent'))
            reaped_ids = [entry['task_id'] for entry in reaped['reaped']]
            claimed(orphan_id in reaped_ids, on_runner['docker_host'], orphan_id, reaped)
            assert reaped['changed'] and live_id not in reaped_ids, reaped
            assert container_states(on_runner['docker_host'], orphan_id) == {}
            assert container_states(on_runner['docker_host'], live_id) == {'kohakuriver-task-' + live_id: 'running'}
            assert finish(on_runner, live)['rc'] == 0
    unless_preempted(scenario)


def test_state_absent_with_a_task_id_stops_and_removes_that_task_and_keeps_its_logs(on_runner):
    task_id = new_id('stopped')
    with removed_afterwards(on_runner['docker_host'], task_id):
        running = ModuleProcess(dict(on_runner, task_id=task_id, command='echo started; sleep 600'))
        running.wait_for_output('started\n')
        args = dict(docker_host=on_runner['docker_host'], state='absent', task_id=task_id, stop_timeout=2)

        checked = run_module('task', args, check=True)
        assert checked['changed'] and checked['reaped'][0]['status'] == 'running', checked
        assert container_states(on_runner['docker_host'], task_id) == {'kohakuriver-task-' + task_id: 'running'}

        removed = run_module('task', args)
        assert removed['changed'] and removed['container'] == 'kohakuriver-task-' + task_id, removed
        assert container_states(on_runner['docker_host'], task_id) == {}
        ended = running.result()
        assert ended.get('failed') and task_id in ended['msg'] and '\n' not in ended['msg'], ended
        assert read(running.stdout_log) == 'started\n'

        again = run_module('task', args)
        assert not again.get('failed') and not again['changed'] and again['reaped'] == [], again


def test_state_absent_leaves_a_container_that_is_not_a_task_container_alone(on_runner, unique_env):
    name = 'kohakuriver-task-%s' % unique_env
    with contextlib.closing(docker.DockerClient(base_url=on_runner['docker_host'], version='auto', timeout=120)) as client:
        client.containers.create('kohakuriver-test/busybox:latest', ['true'], name=name)
        try:
            refused = run_module('task', dict(docker_host=on_runner['docker_host'], state='absent', task_id=unique_env))
            assert refused.get('failed') and 'not a task container of kohakuriver.docker' in refused['msg'], refused
            swept = run_module('task', dict(docker_host=on_runner['docker_host'], state='absent'))
            assert unique_env not in [entry['task_id'] for entry in swept['reaped']], swept
            assert container_states(on_runner['docker_host'], unique_env) == {name: 'created'}
        finally:
            client.api.remove_container(name, force=True)


def test_a_reused_task_id_never_overwrites_the_earlier_tasks_logs(on_runner):
    task_id = new_id('reused')
    first = run_module('task', dict(on_runner, task_id=task_id, command='echo first; echo first-err >&2'))
    assert first['rc'] == 0, first
    again = run_module('task', dict(on_runner, task_id=task_id, command='echo second'))
    assert again.get('failed') and 'already has logs in %s' % first['log_dir'] in again['msg'], again
    assert 'choose another task_id' in again['msg'] and '\n' not in again['msg'] and 'rc' not in again, again
    assert read(first['stdout_log']) == 'first\n' and read(first['stderr_log']) == 'first-err\n'
    assert container_states(on_runner['docker_host'], task_id) == {}

    os.rename(first['log_dir'], first['log_dir'] + '.moved')
    moved = run_module('task', dict(on_runner, task_id=task_id, command='echo second'))
    assert moved['rc'] == 0 and read(moved['stdout_log']) == 'second\n', moved
    assert read(os.path.join(first['log_dir'] + '.moved', 'stdout.log')) == 'first\n'


def test_a_module_stopped_with_sigterm_removes_its_own_container(on_runner):
    task_id = new_id('terminated')
    with removed_afterwards(on_runner['docker_host'], task_id):
        running = ModuleProcess(dict(on_runner, task_id=task_id, command='echo started; sleep 600'))
        running.wait_for_output('started\n')
        running.process.send_signal(signal.SIGTERM)
        ended = running.result()
        assert ended.get('failed') and ended['msg'] == 'Task interrupted by signal 15.', ended
        assert ended['task_id'] == task_id and ended['log_dir'].endswith('/logs/' + task_id), ended
        assert container_states(on_runner['docker_host'], task_id) == {}
        assert read(running.stdout_log) == 'started\n'
