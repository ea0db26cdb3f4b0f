"""The task record: written whole or not at all, read back only when every field is what the task module writes, and
the outcome a task ended with."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.sigterm import Interrupted
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_record import (
    TaskRecorder, final_status, mark_cancelled, read_record, record_path, write_record,
)

SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
SETTINGS = settings(max_examples=300, database=None, suppress_health_check=SLOW)
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                   st.sampled_from(['running', 'succeeded', 'run-1', 'nope']))
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
                     max_leaves=6)


def clean(call, *args):
    """call(*args), or None when it failed cleanly with a one-line message."""
    try:
        return call(*args)
    except Failure as failure:
        assert isinstance(failure.msg, str) and failure.msg and '\n' not in failure.msg, failure.msg
        return None


LABELS = {'io.kohakuriver.docker.task.owner': 'node1/boot/4242/99', 'io.kohakuriver.docker.task.deadline': '1800000000'}


def spec(tmp_path, task_id='run-1'):
    log_dir = tmp_path / 'logs' / task_id
    log_dir.mkdir(parents=True)
    return SimpleNamespace(task_id=task_id, env='py', argv=['sh', '-c', 'echo hi'], image='kohakuriver/py:base',
                           container_name='kohakuriver-task-' + task_id, log_dir=str(log_dir),
                           log_files=(str(log_dir / 'stdout.log'), str(log_dir / 'stderr.log')))


def test_a_task_is_recorded_when_it_starts_and_when_it_ends(tmp_path):
    recorder = TaskRecorder(spec(tmp_path), 'runner1', 'daemon-a')
    recorder.finish(dict(rc=0))  # not started: nothing to record
    assert not os.path.exists(record_path(recorder.spec.log_dir))
    recorder.start(1700000000.25, LABELS)
    running = read_record(record_path(recorder.spec.log_dir))
    assert (running['status'], running['started'], running['owner'], running['deadline']) == (
        'running', '2023-11-14T22:13:20.250Z', 'node1/boot/4242/99', 1800000000)
    assert (running['runner'], running['daemon_id'], running['rc'], running['finished']) == ('runner1', 'daemon-a', None, None)
    recorder.finish(dict(rc=3, end='2023-11-14T22:13:30.000Z', duration=9.75))
    ended = read_record(record_path(recorder.spec.log_dir))
    assert (ended['status'], ended['rc'], ended['finished'], ended['duration']) == ('failed', 3, '2023-11-14T22:13:30.000Z', 9.75)
    assert recorder.warnings == [] and os.listdir(recorder.spec.log_dir) == ['task.json']


def test_a_cancel_written_meanwhile_stays_a_cancel_with_the_exit_code(tmp_path):
    recorder = TaskRecorder(spec(tmp_path))
    recorder.start(1700000000, {})
    assert mark_cancelled(recorder.spec.log_dir, now=1700000005) is None
    assert read_record(record_path(recorder.spec.log_dir))['status'] == 'cancelled'
    recorder.finish(dict(rc=143, end='2023-11-14T22:13:26.000Z', duration=6.0))
    ended = read_record(record_path(recorder.spec.log_dir))
    assert (ended['status'], ended['rc'], ended['cancelled'], ended['deadline']) == ('cancelled', 143, True, None)
    assert mark_cancelled(recorder.spec.log_dir) is None  # ended: left as it is
    assert mark_cancelled(str(tmp_path / 'no-such-task')) is None


def test_a_record_that_cannot_be_written_is_a_warning(tmp_path):
    recorder = TaskRecorder(spec(tmp_path))
    os.rmdir(recorder.spec.log_dir)
    recorder.start(1700000000, {})
    assert len(recorder.warnings) == 1 and 'Could not write the task record' in recorder.warnings[0]


@pytest.mark.parametrize('outcome, failure, status', [
    (dict(rc=0), None, 'succeeded'),
    (dict(rc=1), None, 'failed'),
    (dict(rc=137, timed_out=True), None, 'timed_out'),
    (dict(rc=137, oom_killed=True), None, 'oom_killed'),
    (dict(), Interrupted('Task interrupted by signal 15.'), 'interrupted'),
    (dict(), Failure('Cannot start task x: no such image'), 'failed'),
    (dict(rc=0), Failure('remove failed'), 'failed'),
])
def test_final_status(outcome, failure, status):
    assert final_status(outcome, failure) == status


def test_a_record_of_another_folder_or_format_is_refused(tmp_path):
    recorder = TaskRecorder(spec(tmp_path, 'run-2'))
    recorder.start(1700000000, {})
    moved = tmp_path / 'logs' / 'other'
    os.rename(recorder.spec.log_dir, moved)
    with pytest.raises(Failure, match='is of task .run-2., not of its folder'):
        read_record(record_path(str(moved)))
    (moved / 'task.json').write_text('{"format": 2}')
    with pytest.raises(Failure, match='not a task record of format 1'):
        read_record(record_path(str(moved)))
    (moved / 'task.json').write_text('{')
    with pytest.raises(Failure, match='Cannot read the task record'):
        read_record(record_path(str(moved)))


@SETTINGS
@given(st.dictionaries(st.sampled_from(['format', 'task_id', 'env', 'argv', 'status', 'rc', 'started', 'deadline', 'cancelled',
                                        'stdout_log', 'duration', 'x']), VALUE))
def test_any_record_on_the_share_is_read_whole_or_refused_in_one_line(tmp_path_factory, changes):
    folder = tmp_path_factory.mktemp('logs') / 'run-1'
    folder.mkdir()
    good = dict(format=1, task_id='run-1', env='py', argv=['true'], image='i', container='c', runner=None, daemon_id=None,
                status='running', rc=None, started='s', finished=None, duration=None, owner=None, deadline=None,
                stdout_log='o', stderr_log='e', cancelled=False, msg=None)
    write_record(str(folder), dict(good, **changes))
    record = clean(read_record, str(folder / 'task.json'))
    if record is not None:
        assert set(record) == set(good) and isinstance(record['argv'], list) and record['task_id'] == 'run-1'
        assert json.loads(json.dumps(record)) == record
