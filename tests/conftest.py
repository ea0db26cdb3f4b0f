"""Shared test harness: the collection under test, the real Docker test bed, and fixtures for modules and playbooks.

Helpers live in tests/support/ (import them from there; nothing imports this file); the test bed fixtures come from
tests/testbed/pytest_plugin.py.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import settings

from support.ansible_runs import run_module, run_playbook, write_inventory

pytest_plugins = ['testbed.pytest_plugin', 'support.file_times']

# Property tests share the machine with the integration tests' daemons: a per-example deadline would fail them on load.
settings.register_profile('kohakuriver', deadline=None)
settings.load_profile('kohakuriver')


@pytest.fixture
def unique_env():
    """A fresh environment name per test, so tests never meet each other's (or a user's) containers and images."""
    return 'krtest-%s' % uuid.uuid4().hex[:10]


@pytest.fixture
def module():
    return run_module


@pytest.fixture
def playbook():
    return run_playbook


@pytest.fixture
def shared_dir(tmp_path):
    """A shared storage root laid out like /mnt/cluster-share, private to one test."""
    root = tmp_path / 'cluster-share'
    (root / 'kohakuriver-containers').mkdir(parents=True)
    (root / 'shared_data').mkdir()
    return root


@pytest.fixture
def local_inventory(testbed, shared_dir, tmp_path):
    return write_inventory(tmp_path / 'inventory.json', testbed, shared_dir)
