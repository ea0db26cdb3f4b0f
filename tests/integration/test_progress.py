"""Progress while packaging and syncing: the progress file the modules write, and the lines their action plugins print
(on a terminal, or when asked), while CI-style output (a pipe) stays quiet."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import threading
import time

import pytest

from support.ansible_runs import BIN, PlaybookRun, run_module, run_playbook
from playbook_support import summary
from tarball_support import docker_cli, environments, remove_env_from  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration

LINE = r'(?m)^%s %s \[%s\]: '


def printed(run, module, env, host):
    return re.findall((LINE % (module, re.escape(env), host)) + r'(.*?)\r?$', run.stdout)


def run_on_terminal(playbook, inventory, extra_vars):
    """ansible-playbook with its stdout and stderr on a pseudo-terminal, as a person runs it."""
    main, terminal = pty.openpty()
    command = [str(BIN / 'ansible-playbook'), '-i', str(inventory), playbook, '-e', json.dumps(extra_vars)]
    chunks = []

    def drain():
        while True:
            try:
                data = os.read(main, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        completed = subprocess.run(command, stdout=terminal, stderr=terminal, stdin=subprocess.DEVNULL, timeout=600, check=False,
                                   env=dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0'))
    finally:
        os.close(terminal)
        reader.join(30)
        os.close(main)
    output = b''.join(chunks).decode('utf-8', 'replace')
    return PlaybookRun(subprocess.CompletedProcess(command, completed.returncode, output, ''))


@pytest.fixture
def host_env(testbed, environments, unique_env):
    environments.make(testbed['host']['docker_host'], unique_env)
    yield unique_env
    for runner in testbed['runners']:
        remove_env_from(runner['docker_host'], unique_env)


def test_progress_prints_on_a_terminal_and_when_asked_and_is_quiet_in_ci(testbed, local_inventory, shared_dir, host_env):
    folder = shared_dir / 'kohakuriver-containers'
    quiet = run_playbook('kohakuriver.docker.tar_create', local_inventory, extra_vars={'kr_env': host_env})
    assert quiet.rc == 0 and quiet.changed('host') == 1, quiet
    assert printed(quiet, 'tarball', host_env, 'host') == [] and 'done, saved' not in quiet.stdout

    on_terminal = run_on_terminal('kohakuriver.docker.tar_create', local_inventory,
                                  {'kr_env': host_env, 'kr_force': True, 'kr_keep': 2})
    assert on_terminal.rc == 0 and on_terminal.changed('host') == 1, on_terminal
    lines = printed(on_terminal, 'tarball', host_env, 'host')
    assert lines and re.match(r'done, saved [\d.]+ [kMG]?B in \d+s \([\d.]+ MB/s\)$', lines[-1]), on_terminal
    made = sorted(name for name in os.listdir(folder) if name.endswith('.tar'))
    assert len(made) == 2
    assert 'Made %s' % (folder / made[-1]) in summary(on_terminal), on_terminal  # the registered result is the module's

    runner = testbed['runners'][0]
    synced = run_playbook('kohakuriver.docker.sync', local_inventory,
                          extra_vars={'kr_nodes': runner['name'], 'kr_envs': host_env, 'kohakuriver_progress': 'always'})
    assert synced.rc == 0 and synced.changed(runner['name']) == 1, synced
    lines = printed(synced, 'image_sync', host_env, runner['name'])
    assert lines and re.match(r'done, loaded [\d.]+ [kMG]?B in \d+s \([\d.]+ MB/s\)$', lines[-1]), synced
    assert re.search(r'%s: %s: loaded %s \(.* verified\)' % (runner['name'], re.escape(host_env), re.escape(made[-1])),
                     summary(synced, 'Say what was done, on every runner, in one report'))
    assert docker_cli(runner['docker_host'], 'image', 'inspect', '--format', '{{.Id}}', 'kohakuriver/%s:base' % host_env).strip()


def test_the_progress_file_tells_each_phase_while_packaging_and_is_gone_after(testbed, tmp_path, shared_dir, host_env):
    path = tmp_path / 'progress.json'
    seen = []
    done = threading.Event()

    def watch():
        while not done.is_set():
            try:
                seen.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                pass
            time.sleep(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        result = run_module('tarball', {'name': host_env, 'tarball_dir': str(shared_dir / 'kohakuriver-containers'),
                                        'docker_host': testbed['host']['docker_host'], 'progress_file': str(path)})
    finally:
        done.set()
        watcher.join()
    assert result.get('changed') and not result.get('failed'), result
    phases = [state['phase'] for state in seen]
    assert 'committing kohakuriver-env-%s' % host_env in phases, phases
    saving = [state for state in seen if state['phase'] == 'saving kohakuriver/%s:base' % host_env]
    assert saving and saving[0]['total_bytes'] > 0 and saving[0]['total_estimated'] is True, seen
    assert all(state['done_bytes'] <= result['save']['bytes'] and state['updated'] >= state['started'] for state in seen)
    assert [name for name in os.listdir(tmp_path) if name.startswith('progress.json')] == []
