"""Task modules run as separate processes, so that a test can SIGKILL one mid-task as Ansible's async timeout, the OOM
killer or a killed ansible-playbook would, containers on a runner looked at with the plain docker CLI, and the
environment the task test files share (fixtures task_env and on_runner)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import docker
import pytest

from runner_helpers import RUNNERS, remove_env_from, runner_node
from support.collection import COLLECTION_ROOT, COLLECTIONS_PATH
from tarball_factory import TarballFactory


class ModuleProcess(object):
    """kohakuriver.docker.task run as Ansible runs a module on a node (like support.ansible_runs.run_module), in the background."""

    def __init__(self, args):
        self.args = dict(args, _ansible_check_mode=False, _ansible_diff=False)
        self.process = subprocess.Popen(
            [sys.executable, str(COLLECTION_ROOT / 'plugins' / 'modules' / 'task.py')], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONPATH=str(COLLECTIONS_PATH)),
        )
        self.process.stdin.write(json.dumps({'ANSIBLE_MODULE_ARGS': self.args}))
        self.process.stdin.close()
        self.process.stdin = None  # communicate() must not flush it again

    @property
    def stdout_log(self):
        return os.path.join(self.args['shared_dir'], 'logs', self.args['task_id'], 'stdout.log')

    def wait_for_output(self, text, limit=300):
        """Wait until the task's stdout log holds text (the task is running); fail when the module ended first."""
        deadline = time.monotonic() + limit
        while not (os.path.exists(self.stdout_log) and text in read(self.stdout_log)):
            if self.process.poll() is not None:
                raise AssertionError('the task module ended before its task wrote %r: %s' % (text, self.result()))
            if time.monotonic() > deadline:
                raise AssertionError('the task wrote no %r in %d s' % (text, limit))
            time.sleep(0.2)

    def kill(self):
        """SIGKILL the module process: nothing of it runs afterwards, no finally, no signal handler."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.process.stdout.close()
        self.process.stderr.close()

    def result(self, timeout=600):
        stdout, stderr = self.process.communicate(timeout=timeout)
        lines = [line for line in stdout.splitlines() if line.startswith('{')]
        if not lines:
            raise AssertionError('the task module printed no result (rc %s): %s %s'
                                 % (self.process.returncode, stdout, stderr))
        return json.loads(lines[-1])


def read(path):
    with open(path) as handle:
        return handle.read()


def docker_cli(docker_host, *words):
    """The plain docker CLI (a client we did not write) against one daemon."""
    completed = subprocess.run(['docker', '-H', docker_host] + list(words), capture_output=True, text=True, timeout=120,
                               check=False)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def container_states(docker_host, task_id):
    """{name: status} of the containers named kohakuriver-task-<task_id> on the daemon, by the docker CLI."""
    listed = docker_cli(docker_host, 'ps', '--all', '--filter', 'name=^kohakuriver-task-%s$' % task_id, '--format',
                        '{{.Names}} {{.State}}')
    return dict(line.split(' ', 1) for line in listed.splitlines() if line)


@pytest.fixture(scope='module')
def task_env(testbed, tmp_path_factory):
    """One environment for this file's tests: a Host tarball in a private shared folder, synced on first use."""
    env = 'krtest-%s' % uuid.uuid4().hex[:10]
    shared = tmp_path_factory.mktemp('task') / 'cluster-share'
    (shared / 'kohakuriver-containers').mkdir(parents=True)
    (shared / 'shared_data').mkdir()
    maker = TarballFactory(testbed['host']['docker_host'], shared / 'kohakuriver-containers')
    path = maker.make(env)
    yield dict(env=env, shared_dir=shared, tarball=path, state_dir=str(shared.parent / 'state'))
    maker.cleanup()
    for name in RUNNERS:
        client = docker.DockerClient(base_url=runner_node(testbed, name)['docker_host'], version='auto')
        remove_env_from(client, env)
        client.close()


@pytest.fixture(params=RUNNERS)
def on_runner(request, testbed, task_env):
    """task arguments for one runner; checks afterwards that no task container of this environment is left."""
    node = runner_node(testbed, request.param)
    yield dict(env=task_env['env'], shared_dir=str(task_env['shared_dir']), state_dir=task_env['state_dir'],
               docker_host=node['docker_host'])
    client = docker.DockerClient(base_url=node['docker_host'], version='auto')
    left = client.containers.list(all=True, filters={'label': 'io.kohakuriver.docker.env=%s' % task_env['env']})
    client.close()
    assert not left, 'task containers left behind: %s' % [c.name for c in left]
