"""Task options turned into a container spec, and refused with a message before Docker is called."""

from __future__ import annotations

import os

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import Request
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.output import Tail
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import (
    RunOptions, environment_list, gpu_requests, memory_bytes, parse_mount,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.task import (
    TaskRemoval, TaskRequest, command_argv, new_task_id, validate_task_id,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_orphans import (
    DEADLINE_MARGIN, machine_identity, parse_owner, process_start,
)


def params(**overrides):
    base = dict(env='my-env', command='python /shared/analyze.py', argv=None, task_id=None, shared_dir='/mnt/cluster-share',
                tarball_dir=None, state_dir='/var/lib/kohakuriver-docker', workdir='/shared', environment=None, mounts=None,
                cpus=None, memory=None, gpus=None, privileged=False, network=None, task_timeout=None, stop_timeout=10,
                sync=True, allow_stale=False)
    base.update(overrides)
    return base


def test_command_is_a_shell_string_and_argv_is_taken_literally():
    assert command_argv('echo "$HOME" | wc', None) == ['sh', '-c', 'echo "$HOME" | wc']
    literal = ['printf', '%s', "it's $(id) `x`"]
    assert command_argv(None, literal) == literal
    for command, argv in ((None, None), ('x', ['y']), ('  ', None), (None, [])):
        with pytest.raises(Failure):
            command_argv(command, argv)


@pytest.mark.parametrize('spec, mount', [
    ('/data:/data', dict(Type='bind', Source='/data', Target='/data', ReadOnly=False)),
    ('/scratch/sets/:/in:ro', dict(Type='bind', Source='/scratch/sets', Target='/in', ReadOnly=True)),
    ('/a:/b:rw', dict(Type='bind', Source='/a', Target='/b', ReadOnly=False)),
])
def test_mounts(spec, mount):
    assert parse_mount(spec) == mount


@pytest.mark.parametrize('spec', ['data:/data', '/data:data', '/data', '/a:/b:rx', '/a:/b:ro:x', '/a/../etc:/b',
                                  '/a:/', '/a:/shared'])
def test_bad_mounts_are_refused(spec):
    with pytest.raises(Failure, match='Mount'):
        parse_mount(spec)


def test_memory_sizes():
    assert memory_bytes('512m') == 512 * 1024 ** 2
    assert memory_bytes('4g') == 4 * 1024 ** 3
    assert memory_bytes('1048576') == 1048576
    assert memory_bytes(None) is None
    for bad in ('lots', '-5m', '5x', '-1'):
        with pytest.raises(Failure, match='memory'):
            memory_bytes(bad)


@pytest.mark.parametrize('zero', ['0', '0m', 0])
def test_memory_0_means_no_limit_as_with_docker_run_and_the_container_module(zero):
    # One reading for tasks, VPS sessions and environment containers: 0, which Docker's HostConfig takes as no limit.
    assert memory_bytes(zero) == 0
    assert TaskRequest(params(memory=zero)).memory == 0
    assert Request(dict(name='my-env', memory=zero)).memory == 0
    host_config = TaskRequest(params(memory=zero)).host_config(_HostConfigClient())
    assert host_config['mem_limit'] == 0


class _HostConfigClient(object):
    class api(object):  # pylint: disable=invalid-name
        @staticmethod
        def create_host_config(**arguments):
            return arguments


def test_memory_is_read_alike_by_the_task_and_the_container_module_on_every_valid_size():
    for size in ('1', '512m', '4g', '1.5g', '64k', '1000b'):
        assert TaskRequest(params(memory=size)).memory == Request(dict(name='my-env', memory=size)).memory \
            == memory_bytes(size), size


def test_gpus_become_device_requests_like_docker_run():
    assert gpu_requests(['0', '1']) == [dict(driver='', count=0, device_ids=['0', '1'], capabilities=[['gpu']])]
    assert gpu_requests(['all']) == [dict(driver='', count=-1, capabilities=[['gpu']])]
    assert gpu_requests(None) is None
    with pytest.raises(Failure):
        gpu_requests(['0,1'])


def test_task_ids():
    first, second = new_task_id(), new_task_id()
    assert first != second
    assert validate_task_id(first) == first
    for bad in ('', '-x', 'a/b', '../x', 'x' * 65, 'a b', 'run-1\n', 'a\nb'):
        with pytest.raises(Failure, match='task_id'):
            validate_task_id(bad)


def test_environment():
    assert environment_list({'B': 2, 'A': 'x y', 'C': None}) == ['A=x y', 'B=2', 'C=']
    with pytest.raises(Failure):
        environment_list({'A=B': '1'})


def test_spec_defaults_follow_kohakuriver_layout():
    spec = TaskRequest(params(task_id='t1'))
    assert spec.image == 'kohakuriver/my-env:base'
    assert spec.container_name == 'kohakuriver-task-t1'
    assert spec.tarball_dir == '/mnt/cluster-share/kohakuriver-containers'
    assert spec.log_dir == '/mnt/cluster-share/logs/t1'
    assert spec.mounts[0] == dict(Type='bind', Source='/mnt/cluster-share/shared_data', Target='/shared', ReadOnly=False)
    assert spec.workdir == '/shared'
    assert not spec.privileged and spec.network is None and spec.nano_cpus is None


def test_spec_limits():
    spec = TaskRequest(params(cpus=1.5, memory='64m', gpus=['0'], privileged=True, network='none', mounts=['/a:/b:ro']))
    assert spec.nano_cpus == 1500000000
    assert spec.memory == 64 * 1024 ** 2
    assert spec.device_requests[0]['device_ids'] == ['0']
    assert spec.privileged and spec.network == 'none'
    assert spec.mounts[1]['Target'] == '/b'


@pytest.mark.parametrize('overrides, message', [
    (dict(env='Bad Env'), 'environment name'),
    (dict(cpus=0), 'cpus'),
    (dict(cpus=float('nan')), 'cpus must be greater than 0 and finite'),
    (dict(cpus=float('inf')), 'cpus must be greater than 0 and finite'),
    (dict(cpus=float('-inf')), 'cpus'),
    (dict(task_timeout=0), 'task_timeout'),
    (dict(task_timeout=float('nan')), r'task_timeout \(seconds\) must be greater than 0 and finite'),
    (dict(task_timeout=float('inf')), r'task_timeout \(seconds\) must be greater than 0 and finite'),
    (dict(stop_timeout=-1), 'stop_timeout'),
    (dict(mounts=['/a:/x', '/b:/x']), 'share a target'),
    (dict(workdir='relative'), 'workdir'),
    (dict(shared_dir='share'), 'shared_dir'),
])
def test_spec_refuses_bad_input(overrides, message):
    with pytest.raises(Failure, match=message) as refused:
        TaskRequest(params(**overrides))
    assert '\n' not in refused.value.msg


@pytest.mark.parametrize('cpus', [float('nan'), float('inf')])
def test_vps_options_refuse_cpus_that_are_not_finite(cpus):
    with pytest.raises(Failure, match='cpus must be greater than 0 and finite'):
        RunOptions(params(cpus=cpus))


def test_task_labels_carry_the_owner_and_the_deadline():
    spec = TaskRequest(params(task_id='t1', task_timeout=60, stop_timeout=5))
    labels = spec.labels(1000.0)
    assert labels['io.kohakuriver.docker.managed'] == 'true' and labels['io.kohakuriver.docker.task'] == 't1'
    assert labels['io.kohakuriver.docker.task.deadline'] == str(1000 + 60 + 5 + DEADLINE_MARGIN)
    machine, pid, start = parse_owner(labels['io.kohakuriver.docker.task.owner'])
    assert machine == machine_identity() and pid == os.getpid() and start == process_start(os.getpid())
    assert 'io.kohakuriver.docker.task.deadline' not in TaskRequest(params(task_id='t2')).labels(1000.0)


def test_tail_keeps_the_end_and_counts_everything():
    tail = Tail(limit=10)
    for _round in range(5):
        tail.add(b'0123456789abc')
    assert tail.total == 65
    assert tail.truncated
    assert tail.text() == '456789abc'[-10:].rjust(10, '3') and len(tail.text()) == 10
    small = Tail(limit=10)
    small.add('é'.encode('utf-8'))
    assert small.text() == 'é' and not small.truncated


def test_state_absent_validates_task_id_and_stop_timeout_before_docker():
    removal = TaskRemoval(dict(state='absent', task_id='t1', stop_timeout=None))
    assert (removal.task_id, removal.stop_timeout) == ('t1', 10)
    assert TaskRemoval(dict(state='absent', task_id=None, stop_timeout=3)).task_id is None
    with pytest.raises(Failure, match='task_id'):
        TaskRemoval(dict(state='absent', task_id='../x', stop_timeout=10))
    with pytest.raises(Failure, match='stop_timeout'):
        TaskRemoval(dict(state='absent', task_id='t1', stop_timeout=-1))
