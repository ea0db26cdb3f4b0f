"""Orphan tests share their runners with every other test, and every task run and pre-sync agent reaps every orphan on
its runner, as designed: another test's reaper may take this test's orphan first. Such a run proves nothing either
way, so the scenario runs again with a new orphan; a reaper under test that misses an orphan still there always fails."""

from __future__ import annotations

from task_support import container_states


class Preempted(Exception):
    """Another reaper on the runner removed this attempt's orphan before the reaper under test could."""


def still_running(docker_host, task_id):
    """The orphan's container still runs; Preempted when another reaper has removed it."""
    states = container_states(docker_host, task_id)
    if not states:
        raise Preempted('the container of task %s was gone before its reaper ran' % task_id)
    assert states == {'kohakuriver-task-' + task_id: 'running'}, states


def claimed(reported, docker_host, task_id, output):
    """The reaper under test reported reaping task_id's container (reported); when it did not, Preempted if the
    container was already gone, else the reaper missed an orphan: the test fails with the reaper's output."""
    if reported:
        return
    assert container_states(docker_host, task_id) == {}, 'the orphan of task %s was not reaped: %s' % (task_id, output)
    raise Preempted('task %s was reaped by another reaper first' % task_id)


def unless_preempted(scenario, attempts=3):
    """scenario(attempt), again with a new orphan (tell it by attempt) each time another reaper came first."""
    preempted = []
    for attempt in range(attempts):
        try:
            return scenario(attempt)
        except Preempted as exc:
            preempted.append(str(exc))
    raise AssertionError('another reaper came first in all %d attempts: %s' % (attempts, '; '.join(preempted)))
