"""task the Ansible way for long work: async + poll 0 + async_status through a real ansible-playbook run, and a task whose
module Ansible's async timeout SIGKILLs: its container is an orphan, reaped by the next task on the runner and by the
runner role's pre-sync agent (its playbook, run as the agent runs it), and task_info tells what became of it."""

from __future__ import annotations

import contextlib
import json
import shutil
import time

import docker
import pytest

from reaper_races import Preempted, claimed, still_running, unless_preempted
from runner_helpers import runner_node
from support.ansible_runs import run_module, run_playbook, write_inventory
from support.collection import COLLECTION_ROOT
from task_support import container_states, read, task_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration

RUNNER = 'runner2'
PLAYBOOK = '''
- name: Run a task in the background and wait for it as Ansible does
  hosts: %s
  gather_facts: false
  module_defaults:
    group/kohakuriver.docker.docker:
      docker_host: "{{ kohakuriver_docker_host }}"
  tasks:
    - name: Start the task
      kohakuriver.docker.task:
        env: "{{ kr_env }}"
        command: "{{ kr_command }}"
        task_id: "{{ kr_task_id }}"
        shared_dir: "{{ kohakuriver_shared_dir }}"
        sync: false
      async: "{{ kr_async }}"
      poll: 0
      register: kr_started

    - name: Wait for it
      ansible.builtin.async_status:
        jid: "{{ kr_started.ansible_job_id }}"
      register: kr_job
      until: kr_job.finished
      retries: 120
      delay: 1
      failed_when: false

    - name: Keep the result for the test
      ansible.builtin.copy:
        content: "{{ kr_job | to_json }}"
        dest: "{{ kr_result }}"
        mode: "0644"

    - name: Remove the job's status file
      ansible.builtin.async_status:
        jid: "{{ kr_started.ansible_job_id }}"
        mode: cleanup
''' % RUNNER


@pytest.fixture(scope='module')
def runner_args(testbed, task_env):
    """task arguments for RUNNER, the environment synced there once (the tasks below run with sync: false)."""
    args = dict(env=task_env['env'], shared_dir=str(task_env['shared_dir']), state_dir=task_env['state_dir'],
                docker_host=runner_node(testbed, RUNNER)['docker_host'])
    assert run_module('task', dict(args, command='true'))['rc'] == 0
    yield args
    with contextlib.closing(docker.DockerClient(base_url=args['docker_host'], version='auto')) as client:
        left = client.containers.list(all=True, filters={'label': 'io.kohakuriver.docker.env=%s' % task_env['env']})
        for container in left:
            container.remove(force=True)
    assert not left, 'task containers left behind: %s' % [container.name for container in left]


def run_async(tmp_path, testbed, args, task_id, command, seconds):
    """The playbook above, for real; returns async_status's last answer about the task."""
    playbook = tmp_path / 'async.yml'
    playbook.write_text(PLAYBOOK)
    inventory = write_inventory(tmp_path / 'inventory.json', testbed, args['shared_dir'])
    result = tmp_path / ('%s.json' % task_id)
    extra_vars = dict(kr_env=args['env'], kr_command=command, kr_task_id=task_id, kr_async=seconds, kr_result=str(result))
    run = run_playbook(playbook, inventory, extra_vars=extra_vars)
    assert run.rc == 0, run
    return json.loads(result.read_text())


def task_of(args, task_id):
    found = run_module('task_info', dict(docker_host=args['docker_host'], shared_dir=args['shared_dir'], task_id=task_id))
    assert not found.get('failed') and len(found['tasks']) == 1, found
    return found['tasks'][0]


def killed_by_async_timeout(tmp_path, testbed, args, task_id):
    """A task still running when its async time limit (4 s) ran out: Ansible SIGKILLed its module, its container runs."""
    job = run_async(tmp_path, testbed, args, task_id, "trap 'exit 143' TERM; echo started; while :; do sleep 0.2; done", 4)
    assert job['finished'] and job['msg'] == 'Timeout exceeded' and 'rc' not in job, job  # failed_when: false
    assert read('%s/logs/%s/stdout.log' % (args['shared_dir'], task_id)) == 'started\n', 'the task never started'
    still_running(args['docker_host'], task_id)
    # SIGKILL is sent before async_status says finished, but a loaded machine may take a moment to end the process.
    deadline = time.monotonic() + 15
    orphan = task_of(args, task_id)
    while orphan['orphaned'] is None and orphan['status'] == 'running' and time.monotonic() < deadline:
        time.sleep(0.5)
        orphan = task_of(args, task_id)
    if orphan['status'] == 'lost':
        raise Preempted('task %s was reaped by another reaper while its owner was looked at' % task_id)
    assert orphan['status'] == 'running' and (orphan['orphaned'] or '').startswith('its owner process'), orphan
    return orphan


def test_async_and_async_status_give_the_tasks_result(tmp_path, testbed, runner_args, unique_env):
    job = run_async(tmp_path, testbed, runner_args, unique_env, 'echo hello; echo bye >&2', 120)
    assert job['finished'] and not job.get('failed') and job['rc'] == 0, job
    assert (job['stdout'], job['stderr'], job['task_id']) == ('hello\n', 'bye\n', unique_env), job
    assert read(job['stdout_log']) == 'hello\n' and container_states(runner_args['docker_host'], unique_env) == {}
    assert task_of(runner_args, unique_env)['status'] == 'succeeded'


def test_a_task_killed_by_its_async_timeout_is_reaped_by_the_next_task(tmp_path, testbed, runner_args, unique_env):
    def scenario(attempt):
        task_id = '%s-%d' % (unique_env, attempt)
        killed_by_async_timeout(tmp_path, testbed, runner_args, task_id)
        next_task = run_module('task', dict(runner_args, command='true', sync=False))
        assert next_task['rc'] == 0, next_task
        claimed(task_id in [entry['task_id'] for entry in next_task['reaped']], runner_args['docker_host'], task_id, next_task)
        assert container_states(runner_args['docker_host'], task_id) == {}
        assert task_of(runner_args, task_id)['status'] == 'lost'
        assert read('%s/logs/%s/stdout.log' % (runner_args['shared_dir'], task_id)) == 'started\n'
    unless_preempted(scenario)


def test_a_task_killed_by_its_async_timeout_is_reaped_by_the_presync_agent(tmp_path, testbed, runner_args, unique_env):
    agent = tmp_path / 'agent'
    agent.mkdir()
    shutil.copy(COLLECTION_ROOT / 'roles' / 'runner' / 'files' / 'presync.yml', agent / 'presync.yml')
    (agent / 'presync.json').write_text(json.dumps(dict(
        kohakuriver_docker_host=runner_args['docker_host'], kohakuriver_tarball_dir=str(tmp_path / 'no-tarballs'),
        kohakuriver_state_dir=str(tmp_path / 'state'), kohakuriver_runner_presync_envs=[],
        kohakuriver_runner_presync_prune=False)))

    def scenario(attempt):
        task_id = '%s-%d' % (unique_env, attempt)
        killed_by_async_timeout(tmp_path, testbed, runner_args, task_id)
        run = run_playbook(agent / 'presync.yml', 'localhost,')
        assert run.rc == 0, run
        reported = 'orphaned task container' in run.stderr and 'kohakuriver-task-%s ' % task_id in run.stderr
        claimed(reported, runner_args['docker_host'], task_id, run)
        assert container_states(runner_args['docker_host'], task_id) == {}
        assert task_of(runner_args, task_id)['status'] == 'lost'
    unless_preempted(scenario)
