"""The built artifact: what galaxy.yml's build_ignore keeps out, and what ansible-builder finds in meta/ for an
execution environment (the same introspection ansible-builder runs when it builds one)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
DEVELOPMENT_TREE = ('tests/', 'bench/', 'scripts/', 'inventories/', 'build/', '.venv/', '.ansible/', '.ci/')


@pytest.fixture(scope='module')
def artifact(tmp_path_factory):
    out = tmp_path_factory.mktemp('artifact')
    subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'build', '--output-path', str(out), str(REPO)],
                   check=True, capture_output=True)
    return next(out.glob('kohakuriver-docker-*.tar.gz'))


@pytest.fixture(scope='module')
def members(artifact):
    with tarfile.open(artifact) as archive:
        return archive.getnames()


def test_the_development_tree_stays_out(members):
    shipped = [name for name in members if name.startswith(DEVELOPMENT_TREE) or '__pycache__' in name]
    assert shipped == []


def test_what_users_run_ships(members):
    for needed in ('plugins/modules/tarball.py', 'roles/runner/tasks/main.yml', 'playbooks/site.yml',
                   'meta/runtime.yml', 'meta/execution-environment.yml', 'examples/shared_data/analyze.py',
                   'inventory.example', 'requirements.txt'):
        assert needed in members


def test_ansible_builder_finds_the_requirements(artifact, tmp_path):
    subprocess.run([str(BIN / 'ansible-galaxy'), 'collection', 'install', '--force', '-p', str(tmp_path), str(artifact)],
                   check=True, capture_output=True)
    found = subprocess.run([str(BIN / 'ansible-builder'), 'introspect', '--sanitize', str(tmp_path)],
                           check=True, capture_output=True, text=True).stdout
    python = found.split('python:', 1)[1].split('system:', 1)[0]
    assert "docker>=7.1.0  # from collection kohakuriver.docker" in python
    assert "paramiko>=3.4  # from collection kohakuriver.docker" in python
    assert 'openssh-client [platform:dpkg]' in found.split('system:', 1)[1]
