"""image_sync from the test bed's registry on both image stores: first sync pulls, the next is unchanged, an update
pulls only the new layer, a pin rolls back without moving bytes, prune keeps nothing superseded, and the result runs
in KohakuRiver's runner form (docker run --rm kohakuriver/<env>:base /bin/sh -c ...)."""

from __future__ import annotations

import pytest

from registry_support import docker_cli, registries  # noqa: F401 pylint: disable=unused-import
from registry_sync_support import base_id, on_runner, run_in_base, versions  # noqa: F401 pylint: disable=unused-import
from support.ansible_runs import run_module

pytestmark = pytest.mark.integration


def sync(node, versions, tmp_path, check=False, **args):  # pylint: disable=redefined-outer-name
    module_args = dict(name=versions.env, docker_host=node['docker_host'], state_dir=str(tmp_path / 'state'),
                       tarball_dir=str(tmp_path / 'no-share'), registry=versions.registry)
    module_args.update(args)
    return run_module('image_sync', module_args, check=check)


@pytest.mark.parametrize('on_runner', ['runner1', 'runner3'], indirect=True)
def test_pull_update_rollback_from_the_latest_tag(on_runner, versions, tmp_path):  # pylint: disable=redefined-outer-name
    node, env, v1, v2 = on_runner, versions.env, versions.v1, versions.v2
    versions.point_latest_at(v1)

    first = sync(node, versions, tmp_path)
    assert first['changed'] and first['action'] == 'pull' and first['source'] == 'registry', first
    assert first['registry'] == dict(repository=versions.repository, digest=v1['digest'], tag='latest')
    assert first['image_id'] == base_id(node, env) == versions.expected_id(node, v1)
    assert first['timestamp'] == v1['timestamp'] and first['verified'] and first['layers_pulled'] >= 1
    assert '%s-%d-' % (env, v1['timestamp']) in run_in_base(node, env, 'cat /kr-version')

    again = sync(node, versions, tmp_path)
    assert not again['changed'] and again['action'] == 'none' and again['image_id'] == first['image_id'], again

    versions.point_latest_at(v2)
    planned = sync(node, versions, tmp_path, check=True)
    assert planned['changed'] and planned['action'] == 'pull' and planned['layers_to_pull'] == v2['layers'][-1:], planned
    assert base_id(node, env) == first['image_id'], 'check mode changed :base'

    update = sync(node, versions, tmp_path)
    assert update['action'] == 'pull' and update['registry']['digest'] == v2['digest'], update
    assert (update['layers_pulled'], update['layers_held']) == (1, len(v1['layers'])), update
    assert update['image_id'] == base_id(node, env) == versions.expected_id(node, v2)
    assert '%s-%d-' % (env, v2['timestamp']) in run_in_base(node, env, 'cat /kr-version')

    rollback = sync(node, versions, tmp_path, pin=str(v1['timestamp']))
    assert rollback['action'] == 'tag' and not rollback['pulled'] and rollback['registry']['tag'] == str(v1['timestamp'])
    assert base_id(node, env) == versions.expected_id(node, v1)
    assert '%s-%d-' % (env, v1['timestamp']) in run_in_base(node, env, 'cat /kr-version')

    pruned = sync(node, versions, tmp_path, prune=True)
    assert pruned['action'] == 'tag' and [entry['id'] for entry in pruned['pruned']] == [versions.expected_id(node, v1)]
    assert versions.held(node, v2) and not versions.held(node, v1)

    back = sync(node, versions, tmp_path, pin=str(v1['timestamp']))
    assert back['action'] == 'pull' and back['layers_pulled'] == 0 and back['layers_held'] == len(v1['layers']), back
    assert base_id(node, env) == versions.expected_id(node, v1)


@pytest.mark.parametrize('on_runner', ['runner1', 'runner3'], indirect=True)
def test_the_share_after_a_registry_pull_and_the_registry_after_a_share_load(on_runner, versions, tmp_path):  # pylint: disable=redefined-outer-name
    """Either source takes over from the other. On the containerd store a docker-legacy load after a pull is named by
    a manifest containerd makes of whatever blobs it holds, the pulled (compressed) ones included: the share's load
    still checks out as the tarball's image, and the registry then finds the share's version up to date."""
    node, env, v1, v2 = on_runner, versions.env, versions.v1, versions.v2
    share = versions.share_of(tmp_path / 'share', v1, v2)
    versions.point_latest_at(v1)
    assert sync(node, versions, tmp_path)['action'] == 'pull'

    unreachable = dict(versions.registry, url='127.0.0.1:9')
    fell_back = sync(node, versions, tmp_path, tarball_dir=share, registry=unreachable, fallback_to_share=True)
    assert fell_back['source'] == 'share' and fell_back['action'] == 'load' and fell_back['verified'], fell_back
    assert fell_back['image_id'] == base_id(node, env) and fell_back['image_id'] in versions.loaded_ids(node, v2), fell_back
    assert '%s-%d-' % (env, v2['timestamp']) in run_in_base(node, env, 'cat /kr-version')
    current = sync(node, versions, tmp_path, tarball_dir=share)
    assert (current['source'], current['action'], current['changed']) == ('registry', 'none', False), current
    assert current['verified'] and current['image_id'] == fell_back['image_id'], current

    versions.clean(node['client'])
    pulled = sync(node, versions, tmp_path, tarball_dir=share)
    assert pulled['action'] == 'pull' and base_id(node, env) == versions.expected_id(node, v2), pulled
    from_share = sync(node, versions, tmp_path, tarball_dir=share, source='share')
    assert from_share['source'] == 'share' and from_share['verified'], from_share
    assert from_share['image_id'] == base_id(node, env), from_share
    assert from_share['image_id'] in versions.loaded_ids(node, v2) + (v2['digest'],), from_share
    assert '%s-%d-' % (env, v2['timestamp']) in run_in_base(node, env, 'cat /kr-version')
    again = sync(node, versions, tmp_path, tarball_dir=share, source='share')
    assert not again['changed'] and again['action'] == 'none', again

    versions.clean(node['client'])
    docker_cli(node['docker_host'], 'pull', '%s@%s' % (versions.repository, v2['digest']))  # by hand, named by no env
    loaded = sync(node, versions, tmp_path, tarball_dir=share, source='share')
    assert not loaded.get('failed'), loaded['msg']
    assert loaded['action'] in ('load', 'tag') and loaded['verified'] and loaded['image_id'] in versions.loaded_ids(node, v2), loaded
    assert '%s-%d-' % (env, v2['timestamp']) in run_in_base(node, env, 'cat /kr-version')
