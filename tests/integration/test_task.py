"""The task module on both runner engines: logs on shared storage as they come, rc, limits, timeout, OOM, argv."""

from __future__ import annotations

import os
import threading
import time

import docker
import pytest

from support.ansible_runs import run_module
from runner_helpers import image_id_on, remove_env_from, runner_node
from tarball_factory import TarballFactory, read_sidecar
from task_support import on_runner, read, task_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


def test_output_lands_in_the_shared_logs_and_rc_zero_passes(on_runner, task_env, testbed):
    result = run_module('task', dict(on_runner, command='echo "to out"; echo "to err" >&2; cat /kr-version; pwd'))
    assert not result.get('failed') and result['changed'] and result['rc'] == 0, result
    log_dir = os.path.join(str(task_env['shared_dir']), 'logs', result['task_id'])
    assert result['log_dir'] == log_dir
    assert read(os.path.join(log_dir, 'stdout.log')) == result['stdout']
    assert result['stdout'].splitlines()[0] == 'to out'
    assert result['stdout'].splitlines()[1].startswith(os.path.basename(task_env['tarball'])[:-4])
    assert result['stdout'].splitlines()[2] == '/shared'
    assert read(os.path.join(log_dir, 'stderr.log')) == 'to err\n' == result['stderr']
    node = [node for node in testbed['runners'] if node['docker_host'] == on_runner['docker_host']][0]
    assert result['image_id'] == image_id_on(node, read_sidecar(task_env['tarball']))
    assert result['argv'] == ['sh', '-c', 'echo "to out"; echo "to err" >&2; cat /kr-version; pwd']
    assert not result['timed_out'] and not result['oom_killed'] and result['duration'] >= 0
    assert result['start'] <= result['end']


def test_a_non_zero_exit_fails_with_rc_and_the_end_of_stderr(on_runner):
    result = run_module('task', dict(on_runner, task_id='fails-%d' % (time.time() * 1000),
                                     command='echo partial; echo "first problem" >&2; echo "final problem" >&2; exit 7'))
    assert result.get('failed') and result['rc'] == 7, result
    assert 'rc 7' in result['msg'] and 'final problem' in result['msg']
    assert result['stdout'] == 'partial\n' and read(result['stdout_log']) == 'partial\n'
    assert result['task_id'].startswith('fails-') and result['log_dir'].endswith('/logs/' + result['task_id'])


def test_the_shared_data_folder_is_mounted_read_write_at_shared(on_runner, task_env):
    script = task_env['shared_dir'] / 'shared_data' / 'analyze.sh'
    script.write_text('echo analysed > /shared/result-$1.txt\n')
    tag = on_runner['docker_host'].split('/')[-2]
    result = run_module('task', dict(on_runner, command='sh /shared/analyze.sh %s' % tag))
    assert result['rc'] == 0, result
    assert (task_env['shared_dir'] / 'shared_data' / ('result-%s.txt' % tag)).read_text() == 'analysed\n'


def test_logs_are_written_as_they_come(on_runner):
    outcome = {}
    task_id = 'live-%d' % (time.time() * 1000)
    args = dict(on_runner, task_id=task_id, command='echo started; sleep 6; echo finished')
    worker = threading.Thread(target=lambda: outcome.update(run_module('task', args)))
    worker.start()
    stdout_log = os.path.join(on_runner['shared_dir'], 'logs', task_id, 'stdout.log')
    seen_while_running = False
    while worker.is_alive():
        if os.path.exists(stdout_log) and read(stdout_log) == 'started\n':
            seen_while_running = worker.is_alive()
            break
        time.sleep(0.2)
    worker.join()
    assert seen_while_running, outcome
    assert outcome['rc'] == 0 and read(stdout_log) == 'started\nfinished\n'


def test_argv_is_passed_literally_never_through_a_shell(on_runner):
    tricky = 'it\'s "quoted" $(echo injected) `echo injected` $HOME; exit 3 | cat'
    result = run_module('task', dict(on_runner, argv=['echo', tricky]))
    assert result['rc'] == 0 and result['stdout'] == tricky + '\n', result
    assert result['argv'] == ['echo', tricky]


def test_a_task_timeout_stops_the_container_and_reports_a_timeout_not_oom(on_runner):
    result = run_module('task', dict(on_runner, command='echo begun; sleep 600', task_timeout=3, stop_timeout=2))
    assert result.get('failed') and result['timed_out'] and not result['oom_killed'], result
    assert 'timed out after 3' in result['msg']
    assert result['rc'] in (137, 143) and result['duration'] < 120
    assert read(result['stdout_log']) == 'begun\n'


def test_exceeding_the_memory_limit_is_reported_as_oom(on_runner):
    result = run_module('task', dict(on_runner, memory='32m',
                                     command='x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'))
    assert result.get('failed') and result['oom_killed'] and not result['timed_out'], result
    assert 'out of memory' in result['msg'] and result['rc'] == 137
    assert 'survived' not in result['stdout']


def test_an_ordinary_kill_137_is_not_reported_as_oom(on_runner):
    # A child killed by SIGKILL, its status passed on: rc 137 that no memory limit caused (KohakuRiver calls it OOM).
    result = run_module('task', dict(on_runner, memory='64m', command="sh -c 'kill -9 $$'; exit $?"))
    assert result.get('failed') and result['rc'] == 137 and not result['oom_killed'], result
    assert 'out of memory' not in result['msg']


def test_limits_environment_workdir_and_mounts_reach_the_container(on_runner, tmp_path):
    extra = tmp_path / 'inputs'
    extra.mkdir()
    (extra / 'data.txt').write_text('input data\n')
    command = ('cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us /sys/fs/cgroup/memory/memory.limit_in_bytes; '
               'echo "$GREETING"; pwd; cat /in/data.txt; touch /in/new 2>/dev/null || echo read-only')
    result = run_module('task', dict(on_runner, command=command, cpus=0.5, memory='64m', workdir='/tmp',
                                     environment={'GREETING': 'hello world'}, mounts=['%s:/in:ro' % extra]))
    assert result['rc'] == 0, result
    assert result['stdout'].splitlines() == ['50000', str(64 * 1024 * 1024), 'hello world', '/tmp', 'input data',
                                             'read-only']


def test_not_privileged_unless_asked_and_network_none(on_runner):
    plain = run_module('task', dict(on_runner, command='grep CapEff /proc/self/status; ls /sys/class/net'))
    isolated = run_module('task', dict(on_runner, network='none', command='ls /sys/class/net'))
    assert plain['rc'] == 0 and isolated['rc'] == 0, (plain, isolated)
    assert not int(plain['stdout'].split()[1], 16) & (1 << 21)  # no CAP_SYS_ADMIN
    assert 'eth0' in plain['stdout'].split()
    assert isolated['stdout'].split() == ['lo']


def test_privileged_when_asked(on_runner, testbed):
    result = run_module('task', dict(on_runner, privileged=True, command='grep CapEff /proc/self/status'))
    engine = [node for node in testbed['runners'] if node['docker_host'] == on_runner['docker_host']][0]
    if engine['engine_version'].startswith('20.10'):
        # This machine's capability bounding set lacks CAP_SYS_RESOURCE; Docker 20.10's runc asks for every
        # capability for a privileged container and is refused (Docker 23+ grants only those the daemon holds).
        # The request reached the runtime, and its refusal is one clean error with nothing left behind.
        assert result.get('failed') and 'Cannot start task' in result['msg'] and 'caps' in result['msg'], result
    else:
        assert result['rc'] == 0, result
        assert int(result['stdout'].split()[1], 16) & (1 << 21)  # CAP_SYS_ADMIN


def test_gpus_on_a_runner_without_gpus_fail_clearly(on_runner):
    result = run_module('task', dict(on_runner, command='true', gpus=['0']))
    assert result.get('failed') and 'gpu' in result['msg'].lower(), result


def test_a_task_id_in_use_is_refused_and_the_running_task_is_left_alone(on_runner):
    task_id = 'busy-%d' % (time.time() * 1000)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(
        run_module('task', dict(on_runner, task_id=task_id, command='echo mine; sleep 5'))))
    worker.start()
    stdout_log = os.path.join(on_runner['shared_dir'], 'logs', task_id, 'stdout.log')
    while worker.is_alive() and not (os.path.exists(stdout_log) and read(stdout_log)):
        time.sleep(0.2)
    second = run_module('task', dict(on_runner, task_id=task_id, command='echo intruder'))
    worker.join()
    assert second.get('failed') and 'in use' in second['msg'], second
    assert outcome['rc'] == 0 and read(stdout_log) == 'mine\n'


def test_sync_loads_a_missing_environment_first(testbed, shared_dir, tmp_path, unique_env):
    node = runner_node(testbed, 'runner2')
    maker = TarballFactory(testbed['host']['docker_host'], shared_dir / 'kohakuriver-containers')
    client = docker.DockerClient(base_url=node['docker_host'], version='auto')
    try:
        maker.make(unique_env)
        args = dict(env=unique_env, shared_dir=str(shared_dir), state_dir=str(tmp_path / 'state'),
                    docker_host=node['docker_host'], command='true')
        without_sync = run_module('task', dict(args, sync=False))
        assert without_sync.get('failed') and 'No local image' in without_sync['msg'], without_sync
        result = run_module('task', args)
        assert result['rc'] == 0 and result['sync']['loaded'] and result['sync']['verified'], result
        assert not run_module('task', args)['sync']['changed']
    finally:
        maker.cleanup()
        remove_env_from(client, unique_env)
        client.close()


def test_check_mode_runs_nothing(on_runner):
    result = run_module('task', dict(on_runner, task_id='checked-%d' % (time.time() * 1000), command='echo no'),
                        check=True)
    assert result['changed'] and 'rc' not in result, result
    assert not os.path.exists(result['log_dir'])


def test_bad_input_fails_before_docker_is_called(on_runner):
    offline = dict(on_runner, docker_host='unix:///nonexistent.sock')
    for bad, message in ((dict(command='true', mounts=['relative:/x']), 'Mount'),
                         (dict(command='true', memory='lots'), 'memory'),
                         (dict(command='true', task_id='../escape'), 'task_id'),
                         (dict(command='true', task_id='run-1\n'), 'task_id'),
                         (dict(command='true', cpus='nan'), 'cpus must be greater than 0 and finite'),
                         (dict(command='true', cpus='inf'), 'cpus must be greater than 0 and finite'),
                         (dict(command='true', task_timeout='nan'), 'task_timeout (seconds) must be greater than 0 and finite'),
                         (dict(command='true', task_timeout='inf'), 'task_timeout (seconds) must be greater than 0 and finite'),
                         (dict(command='true', argv=['true']), 'mutually exclusive')):
        result = run_module('task', dict(offline, **bad))
        assert result.get('failed') and message in result['msg'] and 'Traceback' not in result['msg'], result
        assert '\n' not in result['msg'] and 'exception' not in result, result
