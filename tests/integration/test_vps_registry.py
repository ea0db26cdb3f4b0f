"""A VPS session whose environment comes from the test bed's registry (no tarball folder): the session's sync pulls
the `latest` digest, the session starts and lets its key in; the registry's repository and the pulls go afterwards."""

from __future__ import annotations

import contextlib
import json
import os
import uuid

import docker
import pytest

from registry_support import docker_cli, plain_api, registries  # noqa: F401 pylint: disable=unused-import
from runner_helpers import runner_node
from support.ansible_runs import run_module
from vps_support import new_key, ssh, vps_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def pushed_vps_env(testbed, registries, vps_env):  # pylint: disable=redefined-outer-name
    """vps_env's image pushed as <plain>/<namespace>/<env>:latest from the Host; the repository goes afterwards."""
    folder = os.path.join(vps_env['shared_dir'], 'kohakuriver-containers')
    sidecar = [name for name in sorted(os.listdir(folder)) if name.endswith('.tar.json')][-1]
    with open(os.path.join(folder, sidecar), encoding='utf-8') as handle:
        image_id = json.load(handle)['image_id']
    namespace = 'krtest-ns-%s' % uuid.uuid4().hex[:10]
    path = '%s/%s' % (namespace, vps_env['env'])
    reference = '%s/%s:latest' % (registries['plain'], path)
    host = testbed['host']['docker_host']
    docker_cli(host, 'tag', image_id, reference)
    try:
        docker_cli(host, 'push', reference)
        yield dict(vps_env, registry=dict(url=registries['plain'], namespace=namespace),
                   repository='%s/%s' % (registries['plain'], path), image_id=image_id)
    finally:
        docker_cli(host, 'rmi', reference, check=False)
        with contextlib.suppress(Exception):
            plain_api(registries).delete(path)


@pytest.mark.parametrize('runner', ['runner1', 'runner3'])
def test_a_session_syncs_its_environment_from_the_registry(testbed, pushed_vps_env, runner, tmp_path):  # pylint: disable=redefined-outer-name
    node = dict(runner_node(testbed, runner))
    env = pushed_vps_env['env']
    name = 's-%s' % uuid.uuid4().hex[:8]
    private, public = new_key('alice@laptop')
    client = docker.DockerClient(base_url=node['docker_host'], version='auto', timeout=120)
    made = {}
    try:
        for image in client.images.list(name='kohakuriver/%s' % env):
            client.images.remove(image.id, force=True)
        made = run_module('vps', dict(name=name, env=env, shared_dir=pushed_vps_env['shared_dir'], authorized_keys=[public],
                                      tarball_dir=str(tmp_path / 'no-share'), state_dir=str(tmp_path / 'state'),
                                      docker_host=node['docker_host'], registry=pushed_vps_env['registry']))
        assert not made.get('failed') and made['status'] == 'running', made
        assert made['sync']['source'] == 'registry' and made['sync']['action'] == 'pull', made['sync']
        assert made['actions'][0] == 'sync' and made['sync']['registry']['repository'] == pushed_vps_env['repository']
        login = ssh(node, made['port'], private, 'cat /etc/kohakuriver/environment.json >/dev/null && echo env-ok',
                    host_key=made['host_key'])
        assert login['ok'] and login['stdout'].strip() == 'env-ok', login
    finally:
        for container in client.containers.list(all=True, filters={'name': 'kohakuriver-vps-' + name}):
            container.remove(force=True)
        pulled = ((made.get('sync') or {}).get('registry') or {}).get('digest')
        for image in client.images.list(name=pushed_vps_env['repository']):
            client.images.remove(image.id, force=True)
        if pulled:  # the containerd image store does not list a pulled image whose layers another image brought
            with contextlib.suppress(docker.errors.NotFound):
                client.images.remove('%s@%s' % (pushed_vps_env['repository'], pulled), force=True)
        for image in client.images.list(name='kohakuriver/%s' % env):
            client.images.remove(image.id, force=True)
        client.close()
