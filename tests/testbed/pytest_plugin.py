"""Pytest plugin for the real Docker test bed: session fixtures ``testbed``, ``docker_hosts`` and
``host_images``.

Load it from a conftest.py with ``pytest_plugins = ["tests.testbed.pytest_plugin"]`` or with
``pytest -p tests.testbed.pytest_plugin``.
"""

import os

import pytest

from . import host_image_users
from .config import TestbedError
from .engine import Engine
from .lifecycle import ensure_up, healthy, teardown
from .state import load_state


def _keys(state):
    return {(entry["kind"], entry["name"], entry.get("pid")) for entry in (state or {}).get("started", [])}


def _started_since(known):
    state = load_state() or {}
    return [entry for entry in state.get("started", []) if (entry["kind"], entry["name"], entry.get("pid")) not in known]


def _release(known, ours):
    """Tear down what this session started: everything when nothing was recorded before it."""
    if ours and os.environ.get("KR_TESTBED_KEEP") != "1":
        teardown(None if not known else ours)


@pytest.fixture(scope="session", name="testbed")
def testbed_fixture():
    """The test bed state (tests/testbed/README.md), brought up when missing or unhealthy.

    Whatever this session had to start is torn down at its end, unless KR_TESTBED_KEEP=1.
    """
    before = load_state()
    if before is not None and healthy(before):
        yield before
        return
    known = _keys(before)
    try:
        state = ensure_up()
    except TestbedError as exc:
        _release(known, _started_since(known))
        pytest.fail("the Docker test bed did not come up: %s" % exc, pytrace=False)
    ours = _started_since(known)
    yield state
    _release(known, ours)


@pytest.fixture(scope="session")
def docker_hosts(testbed):
    """Every engine of the test bed, Host first: dicts with name, docker_host, engine_version, api_version, image_store
    (graphdriver or containerd)."""
    return [dict(node) for node in [testbed["host"]] + testbed["runners"]]


@pytest.fixture(scope="session")
def host_images(testbed):
    """The test bed's images ({key: reference}), made sure to be on the Host engine, for tests that assume them there.

    The Host keeps no copy of its own (so that tests really pull): what is missing is pulled from the test registry
    and, when the last session using them (pytest-xdist workers count one each) ends, untagged again unless a
    container still uses it.
    """
    host = Engine("host", testbed["host"]["docker_host"][len("unix://"):])
    host_image_users.join(host, testbed["images"].values())
    yield dict(testbed["images"])
    host_image_users.leave(host)
