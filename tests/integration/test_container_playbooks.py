"""The container playbooks (seed: container create|list|start|stop|delete|shell) and scripts/env-shell, for real."""

from __future__ import annotations

import json
import os
import pty
import select
import shlex
import subprocess
import sys
import time

import pytest

from support.ansible_runs import run_playbook
from support.collection import BIN, REPO
from container_support import host_engine, host_env, inspect, make_foreign  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


def playbook(verb, inventory, env, **extra):
    return run_playbook('kohakuriver.docker.container_%s' % verb, inventory, extra_vars=dict(extra, kr_env=env))


def twice(verb, inventory, env, **extra):
    """Run a playbook twice: the first run changes something, the second nothing."""
    first = playbook(verb, inventory, env, **extra)
    assert first.rc == 0 and first.changed() == 1, first
    second = playbook(verb, inventory, env, **extra)
    assert second.rc == 0 and second.changed() == 0, second
    return first


def drive_shell(argv, expected, timeout=60):
    """Run argv on a pseudo-terminal like a person: wait for the prompt, type a command, read its answer, type exit."""
    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(argv[0], argv, dict(os.environ, PATH='%s:%s' % (BIN, os.environ['PATH']), TERM='xterm'))
    output = b''
    deadline = time.monotonic() + timeout

    def read_until(marker):
        nonlocal output
        while marker not in output and time.monotonic() < deadline:
            if select.select([fd], [], [], 0.5)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                output += chunk

    try:
        read_until(b'# ')
        os.write(fd, b'echo kr-$((6*7))-$(hostname)\n')
        read_until(expected.encode())
        os.write(fd, b'exit\n')
        read_until(b'\0never')
    finally:
        _pid, status = os.waitpid(pid, 0)
        os.close(fd)
    text = output.decode('utf-8', 'replace')
    assert expected in text, text
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text


def test_the_container_verbs_are_idempotent_playbooks(host, env, testbed, local_inventory):
    busybox = testbed['images']['busybox']
    created = twice('create', local_inventory, env, kr_image=busybox)
    assert 'kohakuriver-env-%s was created from %s, and is running.' % (env, busybox) in created.stdout
    container_id = inspect(host['docker_host'], env)['Id']

    listing = playbook('list', local_inventory, None)
    assert listing.rc == 0 and listing.changed() == 0, listing
    header = [line for line in listing.stdout.splitlines() if 'ENVIRONMENT' in line]
    row = [line for line in listing.stdout.splitlines() if container_id[:12] in line]
    assert header and row, listing
    assert row[0].split()[1:4] == [env, busybox, 'running'], row

    stopped = twice('stop', local_inventory, env)
    assert 'is now stopped' in stopped.stdout
    assert not inspect(host['docker_host'], env)['State']['Running']
    twice('start', local_inventory, env)
    assert inspect(host['docker_host'], env)['Id'] == container_id

    shell = playbook('shell', local_inventory, env)
    assert shell.rc == 0 and shell.changed() == 0, shell
    command = 'docker -H %s exec -it kohakuriver-env-%s sh' % (host['docker_host'], env)
    assert command in shell.stdout, shell
    drive_shell(shlex.split(command), 'kr-42-%s' % container_id[:12])

    deleted = twice('delete', local_inventory, env)
    assert 'tarballs and images are kept' in deleted.stdout
    assert inspect(host['docker_host'], env) is None
    assert container_id[:12] not in playbook('list', local_inventory, env).stdout


def test_env_shell_opens_bash_in_a_debian_container_for_the_inventory_host(host, env, testbed, local_inventory):
    assert playbook('create', local_inventory, env, kr_image=testbed['images']['python']).rc == 0
    container_id = inspect(host['docker_host'], env)['Id']
    shell = playbook('shell', local_inventory, env)
    assert 'exec -it kohakuriver-env-%s bash' % env in shell.stdout, shell
    text = drive_shell([str(REPO / 'scripts' / 'env-shell'), env, '-i', str(local_inventory)],
                       'kr-42-%s' % container_id[:12])
    assert 'root@%s' % container_id[:12] in text, 'bash prompt, not sh'


def test_env_shell_refuses_a_bad_name_and_says_how_to_start_a_stopped_container(host, env, testbed, local_inventory):
    script = str(REPO / 'scripts' / 'env-shell')
    environ = dict(os.environ, PATH='%s:%s' % (BIN, os.environ['PATH']))
    bad = subprocess.run([script, 'Bad/Name', '-i', str(local_inventory)], capture_output=True, text=True, env=environ, check=False)
    assert bad.returncode == 2 and 'lowercase letters and digits' in bad.stderr
    missing = subprocess.run([script, env, '-i', str(local_inventory)], capture_output=True, text=True, env=environ, check=False)
    assert missing.returncode == 1 and 'kohakuriver.docker.container_create -e kr_env=%s' % env in missing.stderr
    assert playbook('create', local_inventory, env, kr_image=testbed['images']['busybox']).rc == 0
    assert playbook('stop', local_inventory, env).rc == 0
    stopped = subprocess.run([script, env, '-i', str(local_inventory)], capture_output=True, text=True, env=environ, check=False)
    assert stopped.returncode == 1 and 'kohakuriver.docker.container_start -e kr_env=%s' % env in stopped.stderr
    shell = playbook('shell', local_inventory, env)
    assert shell.rc != 0 and 'container_start -e kr_env=%s' % env in shell.stdout, shell


def test_check_mode_creates_nothing(host, env, testbed, local_inventory):
    run = run_playbook('kohakuriver.docker.container_create', local_inventory, check=True, diff=True,
                       extra_vars=dict(kr_env=env, kr_image=testbed['images']['busybox']))
    assert run.rc == 0 and run.changed() == 1, run
    assert inspect(host['docker_host'], env) is None


def test_create_refuses_a_foreign_container_and_leaves_it(host, env, testbed, local_inventory):
    foreign_id = make_foreign(host['docker_host'], env, testbed['images']['busybox'])
    run = playbook('create', local_inventory, env, kr_image=testbed['images']['busybox'])
    assert run.rc != 0 and 'adopt: true' in run.stdout, run
    deleted = playbook('delete', local_inventory, env)
    assert deleted.rc != 0 and 'adopt: true' in deleted.stdout, deleted
    assert inspect(host['docker_host'], env)['Id'] == foreign_id
    adopted = playbook('delete', local_inventory, env, kr_adopt=True)
    assert adopted.rc == 0 and adopted.changed() == 1 and inspect(host['docker_host'], env) is None, adopted


def test_a_missing_variable_says_what_to_pass(local_inventory):
    run = run_playbook('kohakuriver.docker.container_create', local_inventory)
    assert run.rc != 0 and '-e kr_env=my-python-env -e kr_image=python:3.11-slim' in run.stdout, run


def test_playbooks_and_env_shell_reach_a_host_over_real_ssh(host, env, testbed, tmp_path):
    """The Host as Ansible usually meets it: over SSH, with the daemon on a unix socket there."""
    ssh = testbed['ssh']
    inventory = tmp_path / 'ssh-inventory.json'
    inventory.write_text(json.dumps({'kohakuriver_host': {'hosts': {'host': {
        'ansible_connection': 'ssh', 'ansible_host': ssh['host'], 'ansible_port': ssh['port'],
        'ansible_user': ssh['user'], 'ansible_ssh_common_args': '-F %s' % ssh['ssh_config'],
        'ansible_python_interpreter': sys.executable, 'kohakuriver_docker_host': host['docker_host'],
    }}}}))
    twice('create', inventory, env, kr_image=testbed['images']['busybox'])
    container_id = inspect(host['docker_host'], env)['Id']
    shell = playbook('shell', inventory, env)
    command = 'ssh -t -p %s -F %s %s@%s docker -H %s exec -it kohakuriver-env-%s sh' % (
        ssh['port'], ssh['ssh_config'], ssh['user'], ssh['host'], host['docker_host'], env)
    assert shell.rc == 0 and command in shell.stdout, shell
    drive_shell([str(REPO / 'scripts' / 'env-shell'), env, '-i', str(inventory)], 'kr-42-%s' % container_id[:12])
    twice('delete', inventory, env)
