"""image_sync from a registry with the share naming the digest, and every way it may go wrong: each a one-line error
that leaves the runner as it was (or, when asked, a fallback to the share or the local image); the secure registry
(TLS, htpasswd); task's sync step and the sync playbook taking the registry the same way. On runner1."""

from __future__ import annotations

import os
import uuid

import pytest

from registry_support import docker_cli, docker_login, registries, secure_api  # noqa: F401 pylint: disable=unused-import
from registry_sync_support import base_id, on_runner, versions  # noqa: F401 pylint: disable=unused-import
from support.ansible_runs import run_module, run_playbook, warnings_of, write_inventory

pytestmark = [pytest.mark.integration, pytest.mark.parametrize('on_runner', ['runner1'], indirect=True)]
UNREACHABLE = '127.0.0.1:9'  # discard: nothing listens there


def sync(node, versions, tarball_dir, tmp_path, check=False, **args):  # pylint: disable=redefined-outer-name
    module_args = dict(name=versions.env, docker_host=node['docker_host'], state_dir=str(tmp_path / 'state'),
                       tarball_dir=str(tarball_dir), registry=versions.registry)
    module_args.update(args)
    return run_module('image_sync', module_args, check=check)


def one_line_failure(result, *words):
    assert result.get('failed') and '\n' not in result['msg'], result
    for word in words:
        assert word in result['msg'], result['msg']


def test_the_share_names_the_digest_and_an_up_to_date_runner_asks_no_registry(on_runner, versions, tmp_path):  # pylint: disable=redefined-outer-name
    node, v1, v2 = on_runner, versions.v1, versions.v2
    versions.point_latest_at(v1)  # the share, not the tag, decides
    share = versions.share_of(tmp_path / 'share', v1, v2)
    pulled = sync(node, versions, share, tmp_path)
    assert pulled['action'] == 'pull' and pulled['registry'] == dict(repository=versions.repository, digest=v2['digest'], tag=None)
    assert pulled['tarball'] == os.path.join(share, os.path.basename(v2['tarball'])) and pulled['timestamp'] == v2['timestamp']
    assert pulled['image_id'] == base_id(node, versions.env) == v2['image_id'] and pulled['verified']

    unreachable = dict(versions.registry, url=UNREACHABLE)
    current = sync(node, versions, share, tmp_path, registry=unreachable)
    assert not current['changed'] and current['action'] == 'none' and current['verified'], current

    rollback = sync(node, versions, share, tmp_path, pin=os.path.basename(v1['tarball']))
    assert rollback['action'] == 'pull' and rollback['layers_pulled'] == 0, rollback  # v2 holds every layer of v1
    assert rollback['registry']['digest'] == v1['digest'] and base_id(node, versions.env) == v1['image_id']


def test_a_manifest_whose_config_is_not_the_sidecars_image_pulls_nothing(on_runner, versions, tmp_path):  # pylint: disable=redefined-outer-name
    share = versions.share_of(tmp_path / 'share', versions.v1, image_id=versions.v2['image_id'])
    refused = sync(on_runner, versions, share, tmp_path)
    one_line_failure(refused, versions.v1['digest'], versions.v2['image_id'], 'nothing was pulled')
    assert not versions.held(on_runner, versions.v1) and base_id(on_runner, versions.env) is None


def test_a_digest_the_registry_lacks_is_an_error(on_runner, versions, tmp_path):  # pylint: disable=redefined-outer-name
    record = dict(versions.v1['sidecar']['registry'], digest='sha256:' + '0' * 64)
    share = versions.share_of(tmp_path / 'share', versions.v1, registry=record)
    one_line_failure(sync(on_runner, versions, share, tmp_path), 'has no manifest', '0' * 64)
    assert base_id(on_runner, versions.env) is None


def test_an_unreachable_registry_keeps_the_runner_or_falls_back(on_runner, versions, tmp_path):  # pylint: disable=redefined-outer-name
    versions.point_latest_at(versions.v1)
    assert sync(on_runner, versions, tmp_path / 'no-share', tmp_path)['action'] == 'pull'
    unreachable = dict(versions.registry, url=UNREACHABLE)
    one_line_failure(sync(on_runner, versions, tmp_path / 'no-share', tmp_path, registry=unreachable), UNREACHABLE)
    stale = sync(on_runner, versions, tmp_path / 'no-share', tmp_path, registry=unreachable, allow_stale=True)
    assert stale['stale'] and not stale['changed'] and any('allow_stale' in text for text in warnings_of(stale)), stale

    share = versions.share_of(tmp_path / 'share', versions.v1, versions.v2)
    fell_back = sync(on_runner, versions, share, tmp_path, registry=unreachable, fallback_to_share=True)
    assert fell_back['source'] == 'share' and fell_back['action'] == 'load' and fell_back['verified'], fell_back
    assert any('fallback_to_share' in text and UNREACHABLE in text for text in warnings_of(fell_back))
    assert base_id(on_runner, versions.env) == versions.v2['image_id']


def test_the_secure_registry_pulls_with_credentials_and_refuses_wrong_ones(on_runner, versions, registries, tmp_path):  # pylint: disable=redefined-outer-name
    secure = registries['secure']
    namespace = 'krtest-secure-%s' % uuid.uuid4().hex[:8]
    path = '%s/%s' % (namespace, versions.env)
    reference = '%s/%s:%d' % (secure['url'], path, versions.v1['timestamp'])
    api = secure_api(registries)
    with docker_login(versions.host, secure) as config:
        docker_cli(versions.host, 'tag', versions.v1['image_id'], reference)
        pulled_name = None
        try:
            docker_cli(versions.host, 'push', reference, config=config)
            pulled_name = '%s/%s@%s' % (secure['url'], path, api.digest(path, str(versions.v1['timestamp'])))
            good = dict(url=secure['url'], namespace=namespace, username=secure['username'], password=secure['password'],
                        ca_path=secure['ca'])
            pulled = sync(on_runner, versions, tmp_path / 'no-share', tmp_path, registry=good, pin=str(versions.v1['timestamp']))
            assert pulled['action'] == 'pull' and base_id(on_runner, versions.env) == versions.v1['image_id'], pulled
            assert secure['password'] not in str(pulled)

            wrong = dict(good, password='not-' + secure['password'])
            one_line_failure(sync(on_runner, versions, tmp_path / 'no-share', tmp_path, registry=wrong), 'credentials')
            no_ca = dict(good, ca_path=None)
            one_line_failure(sync(on_runner, versions, tmp_path / 'no-share', tmp_path, registry=no_ca), 'ca_path')
        finally:
            api.delete(path)
            docker_cli(versions.host, 'rmi', reference, check=False)
            if pulled_name:
                docker_cli(on_runner['docker_host'], 'rmi', '-f', pulled_name, check=False)


def test_task_and_the_sync_playbook_take_the_registry(on_runner, versions, testbed, shared_dir, tmp_path):  # pylint: disable=redefined-outer-name
    versions.point_latest_at(versions.v1)
    task = run_module('task', dict(env=versions.env, command='cat /kr-version', shared_dir=str(shared_dir),
                                   state_dir=str(tmp_path / 'state'), docker_host=on_runner['docker_host'],
                                   registry=versions.registry))
    assert task.get('rc') == 0 and task['stdout'].startswith('%s-%d-' % (versions.env, versions.v1['timestamp'])), task
    assert task['sync']['source'] == 'registry' and task['sync']['action'] == 'pull'

    versions.point_latest_at(versions.v2)
    inventory = write_inventory(tmp_path / 'inventory.json', testbed, shared_dir,
                                {'kohakuriver_registry': versions.registry, 'kohakuriver_state_dir': str(tmp_path / 'state')})
    ran = run_playbook('kohakuriver.docker.sync', inventory, {'kr_nodes': 'runner1', 'kr_envs': versions.env})
    assert ran.rc == 0, ran
    assert 'runner1: %s: pulled %s@%s' % (versions.env, versions.repository, versions.v2['digest'][:19]) in ran.stdout, ran
    assert base_id(on_runner, versions.env) == versions.v2['image_id']

    registry_only = write_inventory(tmp_path / 'registry-only.json', testbed, shared_dir, {
        'kohakuriver_registry': versions.registry, 'kohakuriver_state_dir': str(tmp_path / 'state'),
        'kohakuriver_tarball_dir': str(tmp_path / 'no-share'), 'kohakuriver_environments': [{'name': versions.env}]})
    declared = run_playbook('kohakuriver.docker.sync', registry_only, {'kr_nodes': 'runner1'})
    assert declared.rc == 0, declared
    assert 'runner1: %s: up to date (%s@%s' % (versions.env, versions.repository, versions.v2['digest'][:19]) in declared.stdout
    submitted = run_playbook('kohakuriver.docker.task_submit', registry_only,
                             {'kr_node': 'runner1', 'kr_env': versions.env, 'kr_command': 'cat /kr-version'})
    assert submitted.rc == 0 and '%s-%d-' % (versions.env, versions.v2['timestamp']) in submitted.stdout, submitted
