"""The orphan rule: which task containers no module process will remove, and which are never touched."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.task_orphans import (
    EXITED_GRACE, docker_time, is_task_container, machine_identity, orphan_reason, owner_label, parse_owner,
    process_start,
)

HERE = 'runner1/0b5d2f4e-1111-2222-3333-444455556666'
NOW = 1800000000


def labels(task_id='t1', owner=None, deadline=None, **extra):
    found = {'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.env': 'e', 'io.kohakuriver.docker.task': task_id}
    if owner:
        found['io.kohakuriver.docker.task.owner'] = owner
    if deadline is not None:
        found['io.kohakuriver.docker.task.deadline'] = str(deadline)
    found.update(extra)
    return found


def alive(pid):
    """A process table of this test: pid 100 started at tick 5000, nothing else."""
    return '5000' if pid == 100 else None


def reason(status='running', exited_at=None, name='kohakuriver-task-t1', machine=HERE, **label_args):
    return orphan_reason(name, labels(**label_args), status, exited_at, NOW, machine, alive)


def test_a_live_owner_on_this_machine_keeps_its_task_running_or_exited():
    for status in ('running', 'exited', 'created'):
        assert reason(status, NOW - 10 * EXITED_GRACE, owner=HERE + '/100/5000') is None


def test_an_owner_gone_from_this_machine_makes_an_orphan_at_once():
    assert reason('running', owner=HERE + '/101/5000') == 'its owner process 101 is gone'
    assert reason('exited', NOW - 1, owner=HERE + '/101/5000') == 'its owner process 101 is gone'


def test_a_reused_pid_is_not_taken_for_the_owner():
    assert reason('running', owner=HERE + '/100/4999') == 'its owner process 100 is gone'


def test_an_owner_of_an_earlier_boot_of_this_machine_is_gone():
    assert reason('running', owner='runner1/another-boot/100/5000') == 'its owner ran before this machine last booted'


def test_a_passed_deadline_makes_an_orphan_whoever_owns_it():
    assert reason('running', owner='elsewhere/boot/7/1', deadline=NOW - 1) == 'its deadline passed'
    assert reason('running', owner=HERE + '/100/5000', deadline=NOW - 1) == 'its deadline passed'
    assert reason('running', owner='elsewhere/boot/7/1', deadline=NOW + 1) is None


def test_an_owner_on_another_machine_gets_a_grace_period_after_the_exit():
    remote = 'controller/boot/7/1'
    assert reason('running', owner=remote) is None
    assert reason('exited', NOW - EXITED_GRACE + 1, owner=remote) is None
    assert reason('exited', NOW - EXITED_GRACE - 1, owner=remote).startswith('it has been exited for over')
    assert reason('created', NOW - EXITED_GRACE - 1, owner=remote).startswith('it has been created for over')
    assert reason('dead', NOW - EXITED_GRACE - 1, owner=remote).startswith('it has been dead for over')
    assert reason('exited', None, owner=remote) is None


def test_no_owner_label_or_an_unknown_machine_falls_back_to_the_grace_period():
    for owner, machine in ((None, HERE), ('garbled', HERE), (HERE + '/101/5000', None)):
        assert reason('running', owner=owner, machine=machine) is None
        assert reason('exited', NOW - EXITED_GRACE - 1, owner=owner, machine=machine) is not None


@pytest.mark.parametrize('name, found', [
    ('kohakuriver-task-t1', labels()),
    ('/kohakuriver-task-t1', labels()),
])
def test_task_containers_are_recognised(name, found):
    assert is_task_container(name, found)


@pytest.mark.parametrize('name, found', [
    ('kohakuriver-task-t1', {'io.kohakuriver.docker.task': 't1'}),  # not managed by us
    ('kohakuriver-task-t1', dict(labels(), **{'io.kohakuriver.docker.managed': 'false'})),
    ('kohakuriver-env-e', {'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.env': 'e'}),
    ('kohakuriver-vps-s', {'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.vps': 's'}),
    ('someone-else', labels()),  # our labels copied onto another name
    ('kohakuriver-task-t2', labels()),
    ('kohakuriver-task-t1', None),
])
def test_containers_that_are_not_our_task_containers_are_never_orphans(name, found):
    assert not is_task_container(name, found)
    assert orphan_reason(name, found, 'exited', 0, NOW, HERE, alive) is None
    assert orphan_reason(name, dict(found or {}, **{'io.kohakuriver.docker.task.deadline': '1'}), 'exited', 0, NOW, HERE,
                         alive) is None


def test_owner_labels_are_read_back():
    assert parse_owner('runner1/boot/42/9000') == ('runner1/boot', 42, '9000')
    for bad in (None, '', 'a/b/c', 'a/b/x/1', 'a/b/1/x', 'a/b/c/1/2'):
        assert parse_owner(bad) is None


def test_this_process_is_its_own_owner_and_a_dead_child_is_gone():
    machine = machine_identity()
    assert machine and machine.split('/')[0] == os.uname()[1]
    assert parse_owner(owner_label()) == (machine, os.getpid(), process_start(os.getpid()))
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    child.wait()
    assert process_start(child.pid) is None


def test_a_zombie_is_gone():
    child = subprocess.Popen([sys.executable, '-c', 'pass'])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not yet reaped: a zombie
    try:
        assert process_start(child.pid) is None
    finally:
        child.wait()


def test_docker_times():
    assert docker_time('2027-01-15T08:00:00.123456789Z') == 1800000000
    assert docker_time('0001-01-01T00:00:00Z') is None
    assert docker_time('') is None and docker_time(None) is None
