"""Runner daemons 3..N for the scale scenario, in a private test bed that never touches the shared one.

`testbed.py up --runners 6` would start runner3..6 in the shared test bed and record them in its state.json:
every pytest session of the other engineers would then see six runners (docker_hosts, write_inventory) and run
their playbook tests against all of them, and after a partial teardown the shared state would still list the
stopped runners (so the next `up` restarts them). Instead, the test bed's own code starts runner3..N under a
private state folder (KR_TESTBED_DIR=/var/tmp/krbench-bed, network namespaces and cgroups krbench-runnerN),
and `teardown()` of that private state stops exactly those and removes the folder. runner1 and runner2 of the
shared test bed are used as they are.
"""

from __future__ import annotations

import os
import subprocess
import sys

from krbench.measure import REPO

TESTBED_DIR = REPO / 'tests' / 'testbed'
BED_DIR = '/var/tmp/krbench-bed'
BED_ENV = {'KR_TESTBED_DIR': BED_DIR, 'KR_TESTBED_PREFIX': 'krbench-'}


def _testbed():
    if str(TESTBED_DIR) not in sys.path:
        sys.path.insert(0, str(TESTBED_DIR))
    import testbed  # pylint: disable=import-outside-toplevel,import-error
    return testbed


def _config(testbed):
    return testbed.Config(dict(os.environ, **BED_ENV))


def up(first, last):
    """Start (or reuse) private runners number first..last; return their state dicts (name, docker_host, ...)."""
    testbed = _testbed()
    config = _config(testbed)
    nodes = [testbed.Node(config, index) for index in range(first, last + 1)]
    if any(node.generation == '26' for node in nodes):
        with testbed._locked(config.cache_dir):  # pylint: disable=protected-access
            testbed.ensure_docker26(config)
    with testbed._locked(config.state_dir):  # pylint: disable=protected-access
        state = testbed.load_state(config) or testbed.new_state(config)
        bed = testbed.Bed(config, state)
        testbed.ensure_runners(bed, nodes)
        bed.save()
        return list(state['runners'])


def is_up():
    return os.path.exists(os.path.join(BED_DIR, 'state.json'))


def down():
    """Stop every private runner and remove the private state folder (the shared test bed is not involved)."""
    if not is_up() and not os.path.isdir(BED_DIR):
        return
    code = 'import testbed; testbed.teardown()'
    subprocess.run([sys.executable, '-c', code], cwd=str(TESTBED_DIR), env=dict(os.environ, **BED_ENV), check=True,
                   timeout=600)
