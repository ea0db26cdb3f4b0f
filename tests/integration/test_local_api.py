"""local_api.LocalClient against the test bed's daemons: every call a sync makes without the Docker SDK answers what
the SDK's call answers, and the daemon's refusals arrive as LocalApiError with its message."""

from __future__ import annotations

import pytest
from ansible_collections.kohakuriver.docker.plugins.module_utils import local_api
from ansible_collections.kohakuriver.docker.plugins.module_utils.images import remove_through_tags, tag
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_pull import pull_counts
from ansible_collections.kohakuriver.docker.plugins.module_utils.syncload import loaded_image_id
from support.ansible_runs import run_module
from tarball_factory import BUSYBOX
from runner_helpers import factory, runner, sync_args  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration


class _Body(object):
    """Bytes sent in pieces, with a len(), as loadstream's streams are."""

    def __init__(self, data):
        self.data = data

    def __len__(self):
        return len(self.data)

    def __iter__(self):
        return iter(self.data[at:at + 65536] for at in range(0, len(self.data), 65536))


def test_local_client_answers_as_the_sdk_does(runner, factory, sync_args, unique_env):
    factory.make(unique_env)
    image_id = run_module('image_sync', sync_args)['image_id']
    sdk = runner['client'].api
    local = local_api.LocalClient(runner['docker_host'][len('unix://'):], timeout=60)
    repository = 'kohakuriver/%s' % unique_env

    listed = local.api.images(name=repository)
    assert [(image['Id'], sorted(image['RepoTags'])) for image in listed] == \
        [(image['Id'], sorted(image['RepoTags'])) for image in sdk.images(name=repository)]
    assert set(local.api.images(quiet=True, all=True)) == set(sdk.images(quiet=True, all=True))
    assert [found['Id'] for found in local.api.containers(all=True)] == [found['Id'] for found in sdk.containers(all=True)]
    assert local.api.info()['ID'] == sdk.info()['ID']
    assert local.api.inspect_image(image_id) == sdk.inspect_image(image_id)

    tag(local, unique_env, image_id, 42)
    assert '%s:42' % repository in sdk.inspect_image(image_id)['RepoTags']
    assert remove_through_tags(local, image_id, ['%s:42' % repository]) is None
    assert '%s:42' % repository not in sdk.inspect_image(image_id)['RepoTags']

    assert local_api.inspect_or_none(local, '%s:absent' % repository) is None
    with pytest.raises(local_api.LocalApiError) as refused:
        local.api.tag('%s:absent' % repository, repository, 'other')
    assert refused.value.status_code == 404 and 'absent' in local_api.explain(refused.value)

    # 8 MiB that are no tar: the daemon stops reading early and says why; that answer comes back, not a broken pipe.
    with pytest.raises(ValueError, match='tar'):
        loaded_image_id(local.api.load_image(_Body(b'x' * (8 << 20)), quiet=True))


def test_local_pull_takes_a_digest_from_the_registry_and_refuses_one_it_lacks(runner):
    path, tag = BUSYBOX.rsplit(':', 1)
    repository = '127.0.0.1:5000/' + path
    registry = RegistryClient('127.0.0.1:5000')
    try:
        digest = registry.resolve(path, tag)
    finally:
        registry.close()
    reference = '%s@%s' % (repository, digest)
    sdk = runner['client'].api
    held_before = local_api.inspect_or_none(runner['client'], reference) is not None
    local = local_api.LocalClient(runner['docker_host'][len('unix://'):], timeout=60)
    try:
        events = list(local.api.pull(repository, tag=digest))
        assert any(digest in str(event.get('status', '')) for event in events), events
        assert reference in sdk.inspect_image(reference)['RepoDigests']
    finally:
        if not held_before:
            sdk.remove_image(reference)

    with pytest.raises((local_api.LocalApiError, ValueError)) as refused:
        pull_counts(local.api.pull(repository, tag='sha256:' + '0' * 64), [])
    assert '0' * 64 in str(refused.value), refused.value
