"""The runner role's GPU check (roles/runner/tasks/gpu.yml) run by ansible-playbook: a runner that declares GPUs on
the test bed (no NVIDIA toolkit, a daemon with runc only) fails with every missing piece named; one that declares
none is not checked; a daemon of our own that has an `nvidia` runtime, with nvidia-ctk on PATH, passes.

Not tested here (no GPU, no NVIDIA repository): installing the toolkit package (kohakuriver_runner_gpu_install_toolkit),
and CDI devices reported by a Docker 28.2+ daemon."""

from __future__ import annotations

import os
import re
import uuid

import pytest

from dockerd_support import throwaway_dockerd
from support.ansible_runs import run_playbook, write_inventory

pytestmark = pytest.mark.integration

PLAYBOOK = '''---
- name: Check the runner's GPUs
  hosts: runner1
  gather_facts: false
  tasks:
    - name: The runner role's GPU check
      ansible.builtin.include_role:
        name: kohakuriver.docker.runner
        tasks_from: gpu
'''


@pytest.fixture
def gpu_check(testbed, shared_dir, tmp_path):
    """Runs the GPU check on runner1 with these inventory variables (and an empty CDI folder of the test's own)."""
    playbook = tmp_path / 'gpu.yml'
    playbook.write_text(PLAYBOOK)
    (tmp_path / 'cdi').mkdir()

    def run(env=None, extra_vars=None, **variables):
        variables.setdefault('kohakuriver_runner_gpu_cdi_dirs', [str(tmp_path / 'cdi')])
        inventory = write_inventory(tmp_path / 'inventory.json', testbed, shared_dir, variables)
        return run_playbook(playbook, inventory, env=env, extra_vars=extra_vars)
    return run


def test_a_runner_that_declares_gpus_fails_naming_everything_missing(gpu_check, testbed, tmp_path):
    run = gpu_check(kohakuriver_gpus=[0, 1])
    assert run.rc != 0 and run.recap['runner1']['failed'] == 1, run
    text = ' '.join(run.stdout.split())
    runtimes = 'io.containerd.runc.v2, io.containerd.runtime.v1.linux, runc'
    assert ('runner1 declares GPUs 0, 1 (kohakuriver_gpus) but cannot run GPU containers: the NVIDIA Container Toolkit is '
            'missing (no nvidia-ctk on PATH and no CDI specification in %s): install the package nvidia-container-toolkit'
            % (tmp_path / 'cdi')) in text, text
    assert ('; the Docker daemon at %s has no nvidia runtime (Runtimes: %s) and sees no CDI GPU device (CDI is off): run '
            'nvidia-ctk runtime configure --runtime=docker and restart Docker' % (
                [r for r in testbed['runners'] if r['name'] == 'runner1'][0]['docker_host'], runtimes)) in text, text


def test_a_runner_without_gpus_is_not_checked(gpu_check):
    run = gpu_check(kohakuriver_gpus=[])
    assert run.rc == 0 and run.recap['runner1'].get('failed', 0) == 0, run
    text = ' '.join(run.stdout.split())
    for task in ("Look for the NVIDIA Container Toolkit's programs", 'Ask the Docker daemon for its runtimes and CDI devices',
                 'Require what GPU containers need'):
        assert re.search(r'%s\] \*+ skipping: \[runner1\]' % re.escape(task), text), text
    assert run.recap['runner1']['ok'] == 1, run


def test_a_daemon_with_the_nvidia_runtime_and_the_toolkit_on_path_passes(gpu_check, tmp_path):
    tools = tmp_path / 'bin'
    tools.mkdir()
    (tools / 'nvidia-ctk').write_text('#!/bin/sh\necho "NVIDIA Container Toolkit CLI version 0.0.0-test"\n')
    (tools / 'nvidia-ctk').chmod(0o755)
    env = {'PATH': '%s:%s' % (tools, os.environ['PATH'])}
    with throwaway_dockerd('krgpu-%s' % uuid.uuid4().hex[:8], extra_args=['--add-runtime', 'nvidia=runc']) as daemon:
        run = gpu_check(env=env, extra_vars={'kohakuriver_docker_host': daemon['docker_host']}, kohakuriver_gpus=['0'])
    assert run.rc == 0, run
    assert 'runner1 can run GPU containers (0): the daemon has the nvidia runtime.' in ' '.join(run.stdout.split()), run.stdout
