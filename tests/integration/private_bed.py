"""A private test bed with one runner whose daemon a test may stop and start, apart from the shared one.

The shared test bed's daemons serve every other test, so they are never restarted. A private bed is the same
`testbed.py up --runners 1` with its own state folder, network namespace prefix, registry port and ssh port (as
bench/krbench/extra_runners.py does); `down` with the same variables stops exactly what `up` started and removes the
folder. Only the `testbed.py` subprocesses see these variables, so the `testbed` fixture keeps the shared bed.
Each test file that uses one gives it a folder, prefix and ports of its own, so that no two ever meet.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time

from support.collection import REPO
from testbed.processes import process_alive

TESTBED = REPO / 'tests' / 'testbed' / 'testbed.py'


class PrivateBed:
    """A one-runner test bed in folder, with network namespace and cgroup prefix prefix, registry and sshd ports."""

    def __init__(self, folder, prefix, registry_port, ssh_port):
        self.folder = folder
        self.env = {'KR_TESTBED_DIR': folder, 'KR_TESTBED_PREFIX': prefix,
                    'KR_TESTBED_REGISTRY': '127.0.0.1:%d' % registry_port, 'KR_TESTBED_SSH_PORT': str(ssh_port)}

    def _testbed(self, *words, timeout=900):
        completed = subprocess.run(['python3', str(TESTBED)] + list(words), env=dict(os.environ, **self.env),
                                   capture_output=True, text=True, timeout=timeout, check=False)
        if completed.returncode != 0:
            raise RuntimeError('testbed.py %s (private bed %s) failed:\n%s' % (
                ' '.join(words), self.folder, '\n'.join((completed.stdout + completed.stderr).strip().splitlines()[-20:])))

    def state(self):
        with open(os.path.join(self.folder, 'state.json'), encoding='utf-8') as handle:
            return json.load(handle)

    def up(self):
        """Start whatever of the private bed is missing; return its runner (name, docker_host, netns, ...)."""
        self._testbed('up', '--runners', '1')
        return self.state()['runners'][0]

    def down(self):
        """Stop everything the private bed started and remove its folder; nothing when it is not there."""
        if os.path.isdir(self.folder):
            self._testbed('down')

    @contextlib.contextmanager
    def running(self):
        """The bed up for a with block (its runner as the value), and down afterwards, also when the block fails."""
        try:
            yield self.up()
        finally:
            self.down()

    def dockerd_entry(self, runner_name):
        return next(entry for entry in self.state()['started'] if (entry['kind'], entry['name']) == ('dockerd', runner_name))

    def stop_dockerd(self, runner_name, timeout=90):
        """SIGTERM the runner's dockerd, as a service manager stops it, and wait until it has exited; return its entry."""
        entry = self.dockerd_entry(runner_name)
        os.kill(entry['pid'], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(entry):
            if time.monotonic() > deadline:
                raise RuntimeError('dockerd of %s (pid %d) still runs %d s after SIGTERM' % (runner_name, entry['pid'], timeout))
            time.sleep(0.2)
        return entry
