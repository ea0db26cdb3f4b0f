"""task_info on both runner engines: a running task (from its container), finished ones (from the records on the share),
the filters, a cancel with state=absent (its grace period, its logs kept), and the playbooks task_list and task_kill."""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from runner_helpers import runner_node
from support.ansible_runs import run_module, run_playbook, warnings_of, write_inventory
from task_support import ModuleProcess, container_states, on_runner, read, task_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


def new_id(word):
    return '%s-%d' % (word, time.time() * 1000)


def listed(connection, **filters):
    result = run_module('task_info', dict(connection, **filters))
    assert not result.get('failed') and not result['changed'], result
    return result


def by_id(result):
    return dict((entry['task_id'], entry) for entry in result['tasks'])


def test_task_info_lists_running_and_finished_tasks_and_a_cancel(on_runner):
    ok_id, bad_id, live_id = new_id('ok'), new_id('bad'), new_id('live')
    done = run_module('task', dict(on_runner, task_id=ok_id, command='echo hello'))
    assert done['rc'] == 0, done
    failed = run_module('task', dict(on_runner, task_id=bad_id, argv=['sh', '-c', 'exit 3', 'name0'], sync=False))
    assert failed.get('failed') and failed['rc'] == 3, failed
    live = ModuleProcess(dict(on_runner, task_id=live_id, sync=False, task_timeout=600,
                              command="trap 'echo got-term; exit 7' TERM; echo started; while :; do sleep 0.2; done"))
    try:
        live.wait_for_output('started\n')
        connection = dict(docker_host=on_runner['docker_host'], shared_dir=on_runner['shared_dir'])
        everything = by_id(listed(connection, env=on_runner['env']))
        assert set(everything) >= {ok_id, bad_id, live_id}, everything

        ok = everything[ok_id]
        assert (ok['status'], ok['rc'], ok['running'], ok['command'], ok['argv']) == (
            'succeeded', 0, False, 'echo hello', ['sh', '-c', 'echo hello']), ok
        assert read(ok['stdout_log']) == 'hello\n' and ok['log_dir'] == done['log_dir'], ok
        assert ok['started'] == done['start'] and ok['finished'] == done['end'] and ok['deadline'] is None, ok
        assert ok['owner'].split('/')[2].isdigit() and ok['env'] == on_runner['env'], ok
        bad = everything[bad_id]
        assert (bad['status'], bad['rc'], bad['command']) == ('failed', 3, "sh -c 'exit 3' name0"), bad

        running = everything[live_id]
        assert (running['status'], running['running'], running['rc'], running['orphaned']) == ('running', True, None, None)
        assert running['owner'].split('/')[2] == str(live.process.pid), running
        assert running['deadline'] > running['started'] and running['container'] == 'kohakuriver-task-' + live_id

        assert list(by_id(listed(connection, task_id=ok_id))) == [ok_id]
        assert list(by_id(listed(connection, task_id=live_id, state='finished'))) == []
        only_running = by_id(listed(connection, env=on_runner['env'], state='running'))
        assert live_id in only_running and ok_id not in only_running and bad_id not in only_running, only_running
        assert ok_id not in by_id(listed(connection, env='krtest-other', state='finished'))

        cancel = dict(docker_host=on_runner['docker_host'], shared_dir=on_runner['shared_dir'], state='absent',
                      task_id=live_id, stop_timeout=30)
        stopped = run_module('task', cancel)
        assert stopped['changed'] and stopped['reaped'][0]['status'] == 'running', stopped
        ended = live.result()
        assert ended.get('failed') and ended['rc'] == 7, ended  # SIGTERM first: the task's trap ran in its grace period
        assert read(live.stdout_log) == 'started\ngot-term\n'
        assert container_states(on_runner['docker_host'], live_id) == {}
        cancelled = by_id(listed(connection, task_id=live_id))[live_id]
        assert (cancelled['status'], cancelled['rc'], cancelled['running']) == ('cancelled', 7, False), cancelled
    finally:
        if live.process.poll() is None:
            live.kill()
        run_module('task', dict(docker_host=on_runner['docker_host'], state='absent', task_id=live_id, stop_timeout=0))


@pytest.fixture
def on_runner1(testbed, task_env):
    """task arguments for runner1 alone: what these tests check does not depend on the engine."""
    return dict(env=task_env['env'], shared_dir=str(task_env['shared_dir']), state_dir=task_env['state_dir'],
                docker_host=runner_node(testbed, 'runner1')['docker_host'])


def test_records_of_another_runner_are_listed_only_with_all_runners(testbed, on_runner1):
    task_id = new_id('elsewhere')
    assert run_module('task', dict(on_runner1, task_id=task_id, command='true'))['rc'] == 0
    connection = dict(docker_host=runner_node(testbed, 'runner2')['docker_host'], shared_dir=on_runner1['shared_dir'],
                      task_id=task_id)
    assert listed(connection)['tasks'] == []
    assert [entry['status'] for entry in listed(connection, all_runners=True)['tasks']] == ['succeeded']


def test_a_broken_record_is_a_warning_and_the_other_tasks_are_listed(on_runner1):
    task_id, broken_id = new_id('fine'), new_id('broken')
    assert run_module('task', dict(on_runner1, task_id=task_id, command='true'))['rc'] == 0
    broken_dir = os.path.join(on_runner1['shared_dir'], 'logs', broken_id)
    os.makedirs(broken_dir)
    with open(os.path.join(broken_dir, 'task.json'), 'w') as handle:
        json.dump(dict(format=1, task_id=broken_id, status='running'), handle)
    result = listed(dict(docker_host=on_runner1['docker_host'], shared_dir=on_runner1['shared_dir']), state='finished')
    assert task_id in by_id(result) and broken_id not in by_id(result), result
    assert any(broken_id in text and 'no valid' in text for text in warnings_of(result)), result['warnings']


def test_the_task_list_and_task_kill_playbooks(testbed, on_runner1, tmp_path):
    done_id, live_id = new_id('listed'), new_id('killed')
    assert run_module('task', dict(on_runner1, task_id=done_id, command='echo listed'))['rc'] == 0
    live = ModuleProcess(dict(on_runner1, task_id=live_id, sync=False,
                              command="trap 'exit 7' TERM; echo started; while :; do sleep 0.2; done"))
    try:
        live.wait_for_output('started\n')
        inventory = write_inventory(tmp_path / 'inventory.json', testbed, on_runner1['shared_dir'])
        table = run_playbook('kohakuriver.docker.task_list', inventory, extra_vars=dict(kr_node='runner1', kr_env=on_runner1['env']))
        assert table.rc == 0, table
        rows = dict((line.split()[0].strip('"'), line.split()) for line in table.stdout.splitlines() if new_id('')[:4] in line)
        assert rows[done_id][2:4] == ['succeeded', '0'] and rows[done_id][-2:] == ['echo', 'listed",'], rows
        assert rows[live_id][2:4] == ['running', '-'], rows
        assert re.search(r'"TASK ID +ENVIRONMENT +STATUS +RC +STARTED \(UTC\) +DURATION +COMMAND"', table.stdout), table

        refused = run_playbook('kohakuriver.docker.task_kill', inventory, extra_vars=dict(kr_node='runner1'))
        assert refused.rc != 0 and 'Give the task, for example' in refused.stdout, refused
        killed = run_playbook('kohakuriver.docker.task_kill', inventory,
                              extra_vars=dict(kr_node='runner1', kr_task_id=live_id, kr_grace=20))
        assert killed.rc == 0 and 'Task %s on runner1 was running: stopped and removed' % live_id in killed.stdout, killed
        assert live.result()['rc'] == 7 and container_states(on_runner1['docker_host'], live_id) == {}
        again = run_playbook('kohakuriver.docker.task_kill', inventory, extra_vars=dict(kr_node='runner1', kr_task_id=live_id))
        assert again.rc == 0 and 'has no container on runner1' in again.stdout, again
        after = run_playbook('kohakuriver.docker.task_list', inventory,
                             extra_vars=dict(kr_node='runner1', kr_task_id=live_id, kr_state='finished'))
        assert after.rc == 0 and re.search(r'"%s +\S+ +cancelled +7 ' % live_id, after.stdout), after
    finally:
        if live.process.poll() is None:
            live.kill()
        run_module('task', dict(docker_host=on_runner1['docker_host'], state='absent', task_id=live_id, stop_timeout=0))
