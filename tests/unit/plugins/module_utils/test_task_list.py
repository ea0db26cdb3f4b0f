"""task_info's list: task containers (with their records, orphans flagged), this daemon's finished records, the lost
ones, the filters; a fake daemon API, real record files."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_list import TaskListRequest, command_line, list_tasks
from ansible_collections.kohakuriver.docker.plugins.module_utils.task_record import write_record

NOW = 1800000000


class FakeApi(object):
    def __init__(self, containers, daemon_id='daemon-a'):
        self.summaries = containers
        self.daemon_id = daemon_id

    def info(self):
        return {'Name': 'runner1', 'ID': self.daemon_id}

    def containers(self, **query):
        assert query['all'] is True
        return [summary for summary in self.summaries
                if all(self._has(summary['Labels'], label) for label in query['filters']['label'])]

    @staticmethod
    def _has(labels, label):
        key, value = (label.split("=", 1) + [""])[:2]
        return key in labels and (not value or labels[key] == value)

    def inspect_container(self, container_id):
        return {'State': {'FinishedAt': '2026-01-01T00:00:00Z'}}


def container(task_id, state='running', env='py', owner='elsewhere/boot/1/1', deadline=None):
    labels = {'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.task': task_id, 'io.kohakuriver.docker.env': env,
              'io.kohakuriver.docker.task.owner': owner}
    if deadline:
        labels['io.kohakuriver.docker.task.deadline'] = str(deadline)
    return dict(Id='id-' + task_id, Names=['/kohakuriver-task-' + task_id], Labels=labels, State=state,
                Command='sh -c sleep', Image='kohakuriver/%s:base' % env, Created=NOW - 60)


def record(logs, task_id, status='succeeded', daemon_id='daemon-a', env='py', started='2026-01-01T00:00:00.000Z'):
    folder = logs / task_id
    folder.mkdir(parents=True)
    write_record(str(folder), dict(
        format=1, task_id=task_id, env=env, argv=['python', 'train.py', '--name', 'a b'], image='kohakuriver/py:base',
        container='kohakuriver-task-' + task_id, runner='runner1', daemon_id=daemon_id, status=status,
        rc=0 if status == 'succeeded' else None, started=started, finished=None, duration=None, owner='o', deadline=NOW,
        stdout_log=str(folder / 'stdout.log'), stderr_log=str(folder / 'stderr.log'), cancelled=False, msg=None))


def listed(tmp_path, containers, **params):
    client = SimpleNamespace(api=FakeApi(containers))
    return list_tasks(client, TaskListRequest(dict(dict(shared_dir=str(tmp_path)), **params)), now=NOW)


def test_containers_records_orphans_and_lost_tasks(tmp_path):
    logs = tmp_path / 'logs'
    record(logs, 'done', started='2026-01-01T00:00:01.000Z')
    record(logs, 'killed', status='running', started='2026-01-01T00:00:02.000Z')
    record(logs, 'live', status='running', started='2026-01-01T00:00:03.000Z')
    record(logs, 'other-daemon', daemon_id='daemon-b')
    result = listed(tmp_path, [container('live'), container('late', deadline=NOW - 1), container('mine', state='exited')])
    tasks = dict((entry['task_id'], entry) for entry in result['tasks'])
    assert set(tasks) == {'done', 'killed', 'live', 'late', 'mine'} and result['runner'] == 'runner1'
    assert (tasks['done']['status'], tasks['done']['rc'], tasks['done']['running']) == ('succeeded', 0, False)
    assert tasks['done']['command'] == "python train.py --name 'a b'" and tasks['done']['deadline'] == '2027-01-15T08:00:00Z'
    assert tasks['killed']['status'] == 'lost' and 'killed' in tasks['killed']['msg']
    assert (tasks['live']['status'], tasks['live']['running'], tasks['live']['orphaned']) == ('running', True, None)
    assert tasks['live']['stdout_log'].endswith('/logs/live/stdout.log')
    assert tasks['late']['orphaned'] == 'its deadline passed' and tasks['late']['argv'] is None
    assert tasks['late']['command'] == 'sh -c sleep' and tasks['late']['stdout_log'] is None
    assert tasks['mine']['status'] == 'exited' and not tasks['mine']['running']
    assert [entry['task_id'] for entry in result['tasks']][:3] == ['done', 'killed', 'live']
    everywhere = listed(tmp_path, [], all_runners=True)
    assert 'other-daemon' in [entry['task_id'] for entry in everywhere['tasks']]


def test_filters(tmp_path):
    logs = tmp_path / 'logs'
    record(logs, 'done')
    record(logs, 'other-env', env='r')
    containers = [container('live'), container('live-r', env='r')]
    assert [t['task_id'] for t in listed(tmp_path, containers, state='running')['tasks']] == ['live', 'live-r']
    assert sorted(t['task_id'] for t in listed(tmp_path, containers, state='finished')['tasks']) == ['done', 'other-env']
    assert sorted(t['task_id'] for t in listed(tmp_path, containers, env='r')['tasks']) == ['live-r', 'other-env']
    assert [t['task_id'] for t in listed(tmp_path, containers, task_id='done')['tasks']] == ['done']
    assert listed(tmp_path / 'nothing-here', [])['tasks'] == []


def test_a_broken_record_is_a_warning(tmp_path):
    record(tmp_path / 'logs', 'done')
    (tmp_path / 'logs' / 'broken').mkdir()
    (tmp_path / 'logs' / 'broken' / 'task.json').write_text('[]')
    result = listed(tmp_path, [])
    assert [t['task_id'] for t in result['tasks']] == ['done'] and len(result['warnings']) == 1, result


@pytest.mark.parametrize('params, message', [
    (dict(state='gone'), 'state must be one of'),
    (dict(task_id='../x'), 'task_id'),
    (dict(env='Bad Env'), 'env'),
    (dict(shared_dir='relative'), 'absolute'),
])
def test_bad_parameters_are_one_line_failures(params, message):
    with pytest.raises(Failure, match=message):
        TaskListRequest(dict(dict(shared_dir='/mnt/cluster-share'), **params))


def test_command_line():
    assert command_line(['sh', '-c', 'echo $HOME']) == 'echo $HOME'
    assert command_line(['python', 'a b']) == "python 'a b'"
