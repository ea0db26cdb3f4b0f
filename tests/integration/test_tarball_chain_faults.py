"""A packaging killed (SIGKILL) at each step of a continuation: the next run completes it or puts the old container
back, and nothing of the container is lost."""

from __future__ import annotations

import contextlib

import pytest

from support.ansible_runs import run_module
from tarball_support import (  # noqa: F401 pylint: disable=unused-import
    check_tarball_against_sidecar, client, container_name, docker_cli, engine, environments,
)

from ansible_collections.kohakuriver.docker.plugins.module_utils.continuation import KILL_AT_VARIABLE, STEPS

pytestmark = pytest.mark.integration


def containers_named(docker_host, env):
    """(name, id, running) of every container whose name starts with the environment container's."""
    with contextlib.closing(client(docker_host)) as api:
        found = api.api.containers(all=True, filters={'name': container_name(env)})
    return sorted((entry['Names'][0].lstrip('/'), entry['Id'], entry['State'] == 'running') for entry in found)


@pytest.mark.parametrize('step', STEPS)
def test_a_run_killed_at_a_step_is_completed_or_rolled_back_by_the_next(docker_hosts, environments, unique_env,
                                                                        shared_dir, step):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    old_id = environments.make(host, unique_env)
    environments.exec(host, unique_env, 'echo kept > /kr-kept')
    args = dict(name=unique_env, tarball_dir=str(folder), docker_host=host)
    try:
        with pytest.raises(AssertionError, match='printed no result'):
            run_module('tarball', args, env={KILL_AT_VARIABLE: step})
        assert (folder / ('.%s.continue' % unique_env)).exists()
        assert [name for name in folder.iterdir() if name.suffix == '.tar'] == []

        following = run_module('tarball', args)
        assert not following.get('failed'), following.get('msg')
        expected = 'completed the continuation' if step == 'removed' else 'put back the container'
        assert any(reason.startswith(expected) for reason in following['reasons']), following['reasons']
        assert following['changed'] and check_tarball_against_sidecar(following['tarball']['path'])
        assert not (folder / ('.%s.continue' % unique_env)).exists()
        assert not (folder / ('.%s.restart' % unique_env)).exists()
        [(name, container_id, running)] = containers_named(host, unique_env)
        assert name == container_name(unique_env) and running and container_id != old_id
        assert docker_cli(host, 'exec', name, 'cat', '/kr-kept').strip() == 'kept'
    finally:
        for name, container_id, _running in containers_named(host, unique_env):
            docker_cli(host, 'rm', '-f', container_id)
