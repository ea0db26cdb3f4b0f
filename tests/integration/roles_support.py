"""Helpers of the role and site tests: an inventory of the test bed for the roles, and cleanup of environments."""

from __future__ import annotations

import contextlib
import json
import os

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import parse_tarball_name
from support.ansible_runs import write_inventory

BUSYBOX = '127.0.0.1:5000/kohakuriver-test/busybox:latest'
PYTHON = '127.0.0.1:5000/kohakuriver-test/debian-python:bookworm'
CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'


def role_inventory(path, testbed, shared_dir, state_root, extra_vars=None):
    """The test bed's inventory with what the roles need on this machine: the daemons run already (install and start
    nothing), the interpreter running Ansible has the SDK, the shared folder is a plain folder, and every runner and
    the Host keep their state under state_root."""
    role_vars = {
        'kohakuriver_host_install_docker': False,
        'kohakuriver_runner_install_docker': False,
        'kohakuriver_host_sdk_install': 'none',
        'kohakuriver_runner_sdk_install': 'none',
        'kohakuriver_runner_require_mount': False,
        'kohakuriver_state_dir': '%s/{{ inventory_hostname }}' % state_root,
        'kohakuriver_environment_state_dir': '%s/environments' % state_root,
    }
    if os.path.isfile(CA_BUNDLE):
        role_vars['kohakuriver_environment_ca_bundle'] = CA_BUNDLE
    role_vars.update(extra_vars or {})
    return write_inventory(path, testbed, shared_dir, extra_vars=role_vars)


def daemons(testbed):
    return [testbed['host']] + list(testbed['runners'])


def remove_environment(testbed, env):
    """Remove env's container, task containers and every kohakuriver/<env> image from the Host and the runners."""
    for node in daemons(testbed):
        with contextlib.closing(docker.DockerClient(base_url=node['docker_host'], version='auto', timeout=120)) as client:
            for container in client.containers.list(all=True, filters={'label': 'io.kohakuriver.docker.env=%s' % env}):
                container.remove(force=True)
            for container in client.containers.list(all=True, filters={'name': 'kohakuriver-env-%s' % env}):
                if container.name == 'kohakuriver-env-%s' % env:
                    container.remove(force=True)
            for image in client.images.list(name='kohakuriver/%s' % env):
                with contextlib.suppress(docker.errors.NotFound):
                    client.images.remove(image.id, force=True)


@pytest.fixture
def environments_made(testbed):
    """Names of environments a test builds; each is removed from every daemon afterwards, also on failure."""
    made = []
    yield made
    for env in made:
        remove_environment(testbed, env)


def host_client(testbed):
    return docker.DockerClient(base_url=testbed['host']['docker_host'], version='auto', timeout=120)


def exec_in(testbed, env, argv):
    """(exit code, output) of argv in env's container on the Host."""
    with contextlib.closing(host_client(testbed)) as client:
        result = client.containers.get('kohakuriver-env-%s' % env).exec_run(argv)
        return result.exit_code, result.output.decode('utf-8', 'replace')


def marker(testbed, env):
    """The environment's marker file. A loaded daemon sometimes ends an exec before its output is attached (moby#27289,
    docker-py#2042: exit 0, no output), so an empty read of this never-empty file is read again, a few times."""
    for _attempt in range(3):
        code, output = exec_in(testbed, env, ['cat', '/etc/kohakuriver/environment.json'])
        assert code == 0, output
        if output:
            break
    return json.loads(output)


def tarballs(shared_dir, env):
    folder = shared_dir / 'kohakuriver-containers'
    return sorted(name for name in os.listdir(folder) if parse_tarball_name(name, env))


def sidecar_layers(shared_dir, tarball):
    """The diff IDs a tarball's sidecar lists, bottom first."""
    return json.loads((shared_dir / 'kohakuriver-containers' / (tarball + '.json')).read_text())['layers']


def task_block(stdout, title):
    """The lines a playbook printed for the task whose title contains title (up to the next task)."""
    blocks = stdout.split('\nTASK [')
    return ['TASK [' + block for block in blocks if title in block.split('\n', 1)[0]]


def changed_tasks(run):
    """The titles of the tasks a playbook run reported changed, for assertion messages."""
    titles = []
    for block in run.stdout.split('\nTASK [')[1:]:
        lines = block.split('\n')
        if any(line.startswith('changed: ') for line in lines[1:]):
            titles.append(lines[0].split(']')[0])
    return titles


def failures(run):
    """The fatal lines of a playbook run (the full output is too long for an assertion message)."""
    lines = (run.stdout + run.stderr).splitlines()
    return '\n'.join(line for line in lines if line.startswith(('fatal:', '[ERROR]', 'failed:'))) or repr(run)
