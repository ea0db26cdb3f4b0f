"""site.yml end to end on the test bed: Host, runners, two environments built and synced; the second run changes
nothing. The inventory's group variables are named like the playbooks' parameters were before kr_ (envs, env, state,
...; playbook_support.COLLIDING): they change nothing."""

from __future__ import annotations

import time

import docker
import pytest

from support.ansible_runs import run_playbook
from playbook_support import COLLIDING
from roles_support import (  # noqa: F401 pylint: disable=unused-import
    BUSYBOX, PYTHON, changed_tasks, environments_made, exec_in, failures, marker, role_inventory, tarballs,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_site_twice_builds_packages_and_syncs_then_changes_nothing(testbed, shared_dir, tmp_path, unique_env,
                                                                   environments_made):
    small, python = unique_env, unique_env + '-py'
    environments_made.extend([small, python])
    environments = [
        {'name': small, 'image': BUSYBOX, 'files': [{'dest': '/etc/site-test', 'content': 'built by site.yml\n'}]},
        {'name': python, 'image': PYTHON, 'python_packages': ['six']},
    ]
    inventory = role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state',
                               dict(COLLIDING, kohakuriver_environments=environments))

    started = time.monotonic()
    first = run_playbook('kohakuriver.docker.site', inventory)
    first_seconds = time.monotonic() - started
    assert first.rc == 0, failures(first)
    assert marker(testbed, small)['package_manager'] == 'none'
    assert marker(testbed, python)['package_manager'] == 'apt-get'
    assert exec_in(testbed, python, ['python3', '-c', 'import six'])[0] == 0
    made = {env: tarballs(shared_dir, env) for env in (small, python)}
    assert all(len(names) == 1 for names in made.values()), made
    for runner in testbed['runners']:
        client = docker.DockerClient(base_url=runner['docker_host'], version='auto', timeout=60)
        try:
            for env in (small, python):
                labels = client.api.inspect_image('kohakuriver/%s:base' % env)['Config']['Labels']
                assert labels['io.kohakuriver.docker.timestamp'] == made[env][0][len(env) + 1:-4]
        finally:
            client.close()

    started = time.monotonic()
    second = run_playbook('kohakuriver.docker.site', inventory)
    second_seconds = time.monotonic() - started
    assert second.rc == 0, failures(second)
    assert second.changed() == 0, changed_tasks(second)
    assert {env: tarballs(shared_dir, env) for env in (small, python)} == made
    print('site.yml on the test bed: first run %.1f s, second run %.1f s (changed=0)' % (first_seconds, second_seconds))
