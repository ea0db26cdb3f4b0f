"""The ML run options of task and vps (GPUs against the runner's declared ones, /dev/shm, IPC, ulimits, devices,
capabilities, runtime, user, env_file): the Docker request they become, and one-line refusals before Docker is called."""

from __future__ import annotations

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import (
    RunOptions, capability_names, daemon_refusal_hint, environment_list, gpu_requests, gpus_of, ipc_mode_of, parse_device, parse_ulimit,
    read_env_file, run_view_of, shm_bytes, user_of,
)


def params(**overrides):
    base = dict(env='my-env', shared_dir='/mnt/cluster-share', tarball_dir=None, state_dir='/var/lib/kohakuriver-docker',
                mounts=None, cpus=None, memory=None, gpus=None, sync=True, allow_stale=False)
    base.update(overrides)
    return base


def one_line_failure(call, *args):
    with pytest.raises(Failure) as caught:
        call(*args)
    assert '\n' not in caught.value.msg
    return caught.value.msg


def test_gpus_all_ids_and_count_become_the_device_requests_of_docker_run_gpus():
    assert gpu_requests(['all']) == [dict(driver='', count=-1, capabilities=[['gpu']])]
    assert gpu_requests(['1', '0']) == [dict(driver='', count=0, device_ids=['1', '0'], capabilities=[['gpu']])]
    assert gpu_requests(['count=2']) == [dict(driver='', count=2, capabilities=[['gpu']])]
    assert gpu_requests(['GPU-3a1b2c3d-0000-1111-2222-333344445555'])[0]['device_ids'] == [
        'GPU-3a1b2c3d-0000-1111-2222-333344445555']
    assert gpu_requests(None) is None and gpu_requests([]) is None
    for bad in (['count=0'], ['count=two'], ['count=2', '0'], ['all', '0'], ['0', '0'], ['0,1'], [''], ['device 0']):
        one_line_failure(gpu_requests, bad)


def test_gpus_are_checked_against_the_runners_declared_gpus():
    assert gpu_requests(['1'], ['0', '1'])[0]['device_ids'] == ['1']
    assert gpu_requests(['count=2'], [0, 1])[0]['count'] == 2
    assert gpu_requests(['all'], ['0'])[0]['count'] == -1
    assert gpu_requests(None, []) is None  # no GPU asked: nothing to check
    assert 'declares GPUs 0, 1 only' in one_line_failure(gpu_requests, ['2', '1'], ['0', '1'])
    assert 'gpus 2:' in one_line_failure(gpu_requests, ['2', '1'], ['0', '1'])
    assert 'more than the 2 GPUs' in one_line_failure(gpu_requests, ['count=3'], ['0', '1'])
    for asked in (['all'], ['0'], ['count=1']):
        assert 'declares no GPUs' in one_line_failure(gpu_requests, asked, [])


def test_a_containers_device_requests_read_back_as_the_gpus_option():
    assert gpus_of([{'Count': -1, 'DeviceIDs': None}]) == ['all']
    assert gpus_of([{'Count': 2}]) == ['count=2']
    assert gpus_of([{'Count': 0, 'DeviceIDs': ['1', '0']}]) == ['0', '1']
    assert gpus_of(None) == []


def test_sizes_modes_limits_devices_capabilities_and_users():
    assert shm_bytes('8g') == 8 << 30 and shm_bytes('1048576') == 1 << 20 and shm_bytes(None) is None
    for bad in ('0', 'lots', '-1m'):
        assert 'shm_size' in one_line_failure(shm_bytes, bad)
    assert [ipc_mode_of(mode) for mode in ('host', 'private', 'shareable', 'none', 'container:db')] == [
        'host', 'private', 'shareable', 'none', 'container:db']
    assert 'ipc_mode' in one_line_failure(ipc_mode_of, 'hots')
    assert parse_ulimit('memlock:-1:-1') == dict(Name='memlock', Soft=-1, Hard=-1)
    assert parse_ulimit('nofile:1024') == dict(Name='nofile', Soft=1024, Hard=1024)
    assert parse_ulimit('stack:1024:-1') == dict(Name='stack', Soft=1024, Hard=-1)
    for bad in ('nofile=1024', 'files:1:2', 'nofile:2:1', 'nofile:-1:5', 'nofile:1:2:3', 'nofile:x'):
        assert 'ulimits entry' in one_line_failure(parse_ulimit, bad)
    assert parse_device('/dev/nvidia0') == dict(PathOnHost='/dev/nvidia0', PathInContainer='/dev/nvidia0', CgroupPermissions='rwm')
    assert parse_device('/dev/zero:/dev/kr-zero:r') == dict(
        PathOnHost='/dev/zero', PathInContainer='/dev/kr-zero', CgroupPermissions='r')
    for bad in ('dev/zero', '/dev/zero:/x:rwx', '/dev/zero:/x:', '/a:/b:r:w', '/dev/../etc/passwd'):
        one_line_failure(parse_device, bad)
    assert capability_names(['ipc_lock', 'CAP_SYS_PTRACE', 'IPC_LOCK']) == ['IPC_LOCK', 'SYS_PTRACE']
    assert 'capabilities entry' in one_line_failure(capability_names, ['SYS PTRACE'])
    assert [user_of(user) for user in ('1000', '1000:1000', 'alice:staff', None)] == ['1000', '1000:1000', 'alice:staff', None]
    assert 'user' in one_line_failure(user_of, 'alice; rm')


def test_run_options_give_docker_the_host_config_of_docker_run():
    options = RunOptions(params(gpus=['0'], available_gpus=['0', '1'], shm_size='2g', ipc_mode='host',
                                ulimits=['memlock:-1:-1', 'nofile:65536:65536'], devices=['/dev/zero:/dev/kr-zero:rw'],
                                capabilities=['ipc_lock'], runtime='runc', user='1000:1000'))
    client = docker.DockerClient(base_url='unix:///nonexistent.sock', version='1.43')  # no request is made
    host = options.host_config(client)
    assert host['ShmSize'] == 2 << 30 and host['IpcMode'] == 'host' and host['Runtime'] == 'runc'
    assert host['CapAdd'] == ['IPC_LOCK'] and host['DeviceRequests'][0]['DeviceIDs'] == ['0']
    assert host['Devices'] == [dict(PathOnHost='/dev/zero', PathInContainer='/dev/kr-zero', CgroupPermissions='rw')]
    assert [(u['Name'], u['Soft'], u['Hard']) for u in host['Ulimits']] == [('memlock', -1, -1), ('nofile', 65536, 65536)]
    assert options.user == '1000:1000'
    daemon_view = dict(host, CapAdd=['CAP_IPC_LOCK'])  # daemons since 20.10 store capabilities with the prefix
    assert run_view_of(daemon_view) == dict(
        shm_size=2 << 30, ipc_mode='host', runtime='runc', capabilities=['IPC_LOCK'], devices=['/dev/zero:/dev/kr-zero:rw'],
        ulimits=['memlock:-1:-1', 'nofile:65536:65536'])
    asked = options.requested_view(params(shm_size='2g', capabilities=['ipc_lock']))
    assert asked == dict(shm_size=2 << 30, capabilities=['IPC_LOCK'])
    assert 'twice' in one_line_failure(RunOptions, params(ulimits=['nofile:1', 'nofile:2']))
    assert 'declares no GPUs' in one_line_failure(RunOptions, params(gpus=['all'], available_gpus=[]))


def test_env_file_lines_and_the_environment_option_that_wins(tmp_path):
    env_file = tmp_path / 'train.env'
    env_file.write_text('# a comment\n\nWANDB_MODE=offline\nNCCL_DEBUG=INFO\nQUOTED="kept as is"\nEMPTY=\nA=b=c\n')
    assert read_env_file(str(env_file)) == dict(WANDB_MODE='offline', NCCL_DEBUG='INFO', QUOTED='"kept as is"', EMPTY='',
                                                A='b=c')
    assert environment_list({'NCCL_DEBUG': 'WARN', 'SEED': 1}, str(env_file)) == [
        'A=b=c', 'EMPTY=', 'NCCL_DEBUG=WARN', 'QUOTED="kept as is"', 'SEED=1', 'WANDB_MODE=offline']
    env_file.write_text('GOOD=1\nexport BAD\n')
    assert 'line 2 is not KEY=VALUE' in one_line_failure(read_env_file, str(env_file))
    assert 'cannot be read' in one_line_failure(read_env_file, str(tmp_path / 'missing.env'))
    env_file.write_bytes(b'A=\xff\n')
    assert 'not UTF-8' in one_line_failure(read_env_file, str(env_file))


def test_a_daemons_refusal_of_gpus_or_a_runtime_says_what_to_do():
    assert 'NVIDIA Container Toolkit' in daemon_refusal_hint('could not select device driver "" with capabilities: [[gpu]]')
    assert 'docker info' in daemon_refusal_hint('Unknown runtime specified nvidia')
    assert 'docker info' in daemon_refusal_hint('unknown or invalid runtime name: nvidia')
    assert daemon_refusal_hint('No such image: x') == ''
