"""Each byte a task writes reaches its log file exactly once, whenever it is written relative to the attach.

The daemon subscribes an attach to the container's streams before it answers, and with logs=true it then replays the
log: what the task wrote in between arrived twice (seen once in a CI run: "started\nstarted\n"). Many short tasks that
print as soon as they start, side by side on every runner engine, make that window show."""

from __future__ import annotations

import concurrent.futures
import contextlib
import os

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.task import TaskRequest, _attach_start_wait, _Step

pytestmark = pytest.mark.integration

SIDE_BY_SIDE = 16
PER_RUNNER = 96
COMMAND = ['sh', '-c', 'echo started; echo to-stderr >&2; sleep 0.2; echo done']


def run_one(docker_host, shared_dir, name):
    """One task's container attached, started and waited for by the task module's own code, with a client of its own
    as each task module process has."""
    spec = TaskRequest(dict(env='krtest-once', shared_dir=shared_dir, state_dir=shared_dir, task_id=name, argv=COMMAND))
    with contextlib.closing(docker.DockerClient(base_url=docker_host, version='auto', timeout=120)) as client:
        container_id = client.api.create_container('kohakuriver-test/busybox:latest', COMMAND, name=name)['Id']
        try:
            outcome = _attach_start_wait(client, spec, container_id, _Step(spec), lambda started: None)
        finally:
            client.api.remove_container(container_id, force=True)
    logged = []
    for path in spec.log_files:
        with open(path, encoding='utf-8') as handle:
            logged.append(handle.read())
    return outcome['rc'], outcome['stdout'], outcome['stderr'], tuple(logged)


def test_output_that_races_the_attach_is_logged_exactly_once(docker_hosts, tmp_path, unique_env):
    expected = (0, 'started\ndone\n', 'to-stderr\n', ('started\ndone\n', 'to-stderr\n'))
    for node in docker_hosts[1:]:
        shared_dir = str(tmp_path / node['name'])
        os.mkdir(shared_dir)
        names = ['%s-%s-%d' % (unique_env, node['name'], number) for number in range(PER_RUNNER)]
        with concurrent.futures.ThreadPoolExecutor(SIDE_BY_SIDE) as pool:
            outcomes = dict(zip(names, pool.map(lambda name: run_one(node['docker_host'], shared_dir, name), names)))
        wrong = dict((name, outcome) for name, outcome in outcomes.items() if outcome != expected)
        assert not wrong, '%s: %d of %d tasks did not log their output exactly once: %s' % (
            node['name'], len(wrong), PER_RUNNER, wrong)
