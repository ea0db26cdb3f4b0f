"""Runner daemons for the scale scenario, in a private test bed that never touches the shared one.

`testbed.py up --runners 6` on the shared test bed does not restart runner1 and runner2 when they answer, but it
records runner3..6 in the shared state.json: every other pytest session would then see six runners
(docker_hosts, write_inventory) and run its playbook tests against all of them, and a partial teardown leaves
the stopped runners listed, so the next `up` starts them again. So scenario 5 runs the same command with its
own state folder, network namespace prefix, registry port and ssh port:

    KR_TESTBED_DIR=/var/tmp/krbench-bed KR_TESTBED_PREFIX=krbench- KR_TESTBED_REGISTRY=127.0.0.1:5055 \
    KR_TESTBED_SSH_PORT=2255 python3 tests/testbed/testbed.py up --runners 6

and `testbed.py down` with the same variables stops exactly what that started and removes the folder. The
shared test bed's state, runner1 and runner2 are not involved.
"""

from __future__ import annotations

import json
import os
import subprocess

from krbench.measure import REPO

TESTBED = REPO / 'tests' / 'testbed' / 'testbed.py'
BED_DIR = os.environ.get('KR_BENCH_BED_DIR', '/var/tmp/krbench-bed')
BED_ENV = {
    'KR_TESTBED_DIR': BED_DIR,
    'KR_TESTBED_PREFIX': 'krbench-',
    'KR_TESTBED_REGISTRY': os.environ.get('KR_BENCH_BED_REGISTRY', '127.0.0.1:5055'),
    'KR_TESTBED_SSH_PORT': os.environ.get('KR_BENCH_BED_SSH_PORT', '2255'),
}
STATE = os.path.join(BED_DIR, 'state.json')


def _testbed(*words, timeout=1800):
    completed = subprocess.run(['python3', str(TESTBED)] + list(words), env=dict(os.environ, **BED_ENV),
                               capture_output=True, text=True, timeout=timeout, check=False)
    if completed.returncode != 0:
        raise RuntimeError('testbed.py %s (private bed %s) failed:\n%s' % (
            ' '.join(words), BED_DIR, '\n'.join((completed.stdout + completed.stderr).strip().splitlines()[-20:])))
    return completed.stdout


def is_up():
    return os.path.exists(STATE)


def up(count):
    """Start (or reuse) the private bed with count runners; return their state dicts (name, docker_host, ...)."""
    _testbed('up', '--runners', str(count))
    with open(STATE, encoding='utf-8') as handle:
        return json.load(handle)['runners'][:count]


def registries():
    """The private bed's registries (tests/testbed/README.md, "Registries"): origin, cache, their storage and log."""
    with open(STATE, encoding='utf-8') as handle:
        return json.load(handle)['registries']


def down():
    """Stop everything the private bed started and remove its folder; nothing when it is not there."""
    if os.path.isdir(BED_DIR):
        _testbed('down', timeout=900)
