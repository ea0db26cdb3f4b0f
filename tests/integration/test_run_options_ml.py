"""The ML run options of the task module on both runner engines: what the created container has (docker inspect, by
the docker CLI) and what the command sees inside; a GPU request on a daemon without the NVIDIA toolkit fails with the
daemon's one line; bad values and GPUs the runner does not declare fail before Docker is called.

No GPU is used here: the test bed has none, so a request that a GPU would satisfy is proven by what the daemon is
asked (HostConfig.DeviceRequests) and by the daemon's refusal."""

from __future__ import annotations

import json
import time

import pytest

from support.ansible_runs import run_module, run_playbook, write_inventory
from task_support import ModuleProcess, docker_cli, on_runner, task_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration

ML_OPTIONS = dict(shm_size='96m', ipc_mode='shareable', ulimits=['nofile:4096:8192', 'core:0:0'],
                  devices=['/dev/zero:/dev/kr-zero:r'], cap_add=['sys_ptrace'], runtime='runc', user='1000:1001',
                  available_gpus=['0', '1', '2'])
SEES = ('id -u; id -g; ulimit -Sn; ulimit -Hn; df -k /dev/shm | tail -n 1; head -c 3 /dev/kr-zero | od -An -tx1; '
        'echo "$WANDB_MODE $NCCL_DEBUG"; ')


def task_id(kind):
    return '%s-%d' % (kind, time.time() * 1000)


def test_the_container_gets_the_ml_options_and_a_gpu_request_fails_at_start_with_one_line(on_runner, task_env, tmp_path):
    env_file = tmp_path / 'train.env'
    env_file.write_text('# experiment settings\nWANDB_MODE=offline\nNCCL_DEBUG=INFO\n')
    release = task_env['shared_dir'] / 'shared_data' / ('release-%s' % task_id('x'))
    args = dict(on_runner, **ML_OPTIONS)
    args.update(task_id=task_id('ml'), env_file=str(env_file), environment={'NCCL_DEBUG': 'WARN'},
                command=SEES + 'echo ready; while [ ! -e /shared/%s ]; do sleep 0.2; done' % release.name)
    running = ModuleProcess(args)
    try:
        running.wait_for_output('ready')
        inspected = json.loads(docker_cli(on_runner['docker_host'], 'inspect', 'kohakuriver-task-' + args['task_id']))[0]
    finally:
        release.touch()
    result = running.result()
    assert result['rc'] == 0, result
    host = inspected['HostConfig']
    assert host['ShmSize'] == 96 << 20 and host['IpcMode'] == 'shareable' and host['Runtime'] == 'runc'
    assert sorted((u['Name'], u['Soft'], u['Hard']) for u in host['Ulimits']) == [('core', 0, 0), ('nofile', 4096, 8192)]
    assert host['Devices'] == [dict(PathOnHost='/dev/zero', PathInContainer='/dev/kr-zero', CgroupPermissions='r')]
    assert [cap.replace('CAP_', '') for cap in host['CapAdd']] == ['SYS_PTRACE']
    assert inspected['Config']['User'] == '1000:1001'
    assert 'WANDB_MODE=offline' in inspected['Config']['Env'] and 'NCCL_DEBUG=WARN' in inspected['Config']['Env']
    lines = result['stdout'].splitlines()
    assert lines[:4] == ['1000', '1001', '4096', '8192'], result['stdout']
    assert lines[4].split()[1] == str(96 << 10) and lines[5].split() == ['00', '00', '00'] and lines[6] == 'offline WARN'

    gpu = run_module('task', dict(on_runner, task_id=task_id('gpu'), command='true', gpus=['0', '1']))
    assert gpu.get('failed') and '\n' not in gpu['msg'], gpu
    assert gpu['msg'].startswith('Cannot start task %s: could not select device driver "" with capabilities: [[gpu]]'
                                 % gpu['task_id']), gpu['msg']
    assert 'install the NVIDIA Container Toolkit' in gpu['msg']


def test_a_runtime_the_daemon_does_not_know_is_refused_at_create_with_one_line(on_runner):
    result = run_module('task', dict(on_runner, command='true', runtime='nvidia'))
    assert result.get('failed') and '\n' not in result['msg'], result
    assert result['msg'].startswith('Cannot create the task container: ') and 'nvidia' in result['msg'], result['msg']
    assert '`docker info` on the runner lists' in result['msg']


@pytest.mark.parametrize('option, value, says', [
    ('gpus', ['3'], 'gpus 3: this runner declares GPUs 0, 1, 2 only'),
    ('gpus', ['count=4'], 'gpus count=4 is more than the 3 GPUs this runner declares'),
    ('shm_size', 'huge', 'shm_size \'huge\' is not a size'),
    ('ipc_mode', 'hots', 'ipc_mode \'hots\' is not one of'),
    ('ulimits', ['nofile=1024'], 'ulimits entry \'nofile=1024\' is not'),
    ('devices', ['/dev/zero:/dev/z:rwx'], 'devices entry'),
    ('cap_add', ['SYS PTRACE'], 'capabilities entry'),
    ('user', 'root;id', 'user \'root;id\' is not'),
    ('env_file', '/nonexistent/train.env', 'env_file /nonexistent/train.env cannot be read'),
])
def test_bad_values_fail_in_one_line_before_docker_is_called(task_env, option, value, says):
    args = dict(env=task_env['env'], shared_dir=str(task_env['shared_dir']), state_dir=task_env['state_dir'],
                docker_host='unix:///nonexistent/docker.sock', command='true', available_gpus=['0', '1', '2'])
    result = run_module('task', dict(args, **{option: value}))
    assert result.get('failed') and says in result['msg'] and '\n' not in result['msg'], result
    assert 'Cannot reach' not in result['msg']


def test_task_submit_checks_gpus_against_the_runners_kohakuriver_gpus(testbed, task_env, tmp_path):
    inventory = write_inventory(tmp_path / 'inventory.json', testbed, task_env['shared_dir'], {'kohakuriver_gpus': [0, 1]})
    base = ['-e', 'kr_node=runner1', '-e', 'kr_env=%s' % task_env['env'], '-e', 'kr_command=true']
    refused = run_playbook('kohakuriver.docker.task_submit', inventory, args=base + ['-e', 'kr_gpus=1,2'])
    assert refused.rc != 0 and 'gpus 2: this runner declares GPUs 0, 1 only' in refused.stdout, refused
    none_declared = write_inventory(tmp_path / 'none.json', testbed, task_env['shared_dir'], {'kohakuriver_gpus': []})
    refused = run_playbook('kohakuriver.docker.task_submit', none_declared, args=base + ['-e', 'kr_gpus=all'])
    assert refused.rc != 0 and 'asked of a runner that declares no GPUs' in refused.stdout, refused
