"""image_sync tries a pull again when the registry fails on its side (500, as distribution's pull-through cache answers
concurrent misses of one blob), and gives up after 3 attempts with a one-line error that leaves :base as it was. On
runner3, the containerd image store, whose daemon reports such a 500 at once (the classic store's daemon retries layer
downloads itself); the registry is the test bed's plain one behind a proxy of this test's own (flaky_registry.py),
which the runner reaches through the test bed's forwarder."""

from __future__ import annotations

import pytest

from flaky_registry import FlakyRegistry
from registry_support import forwarded, registries  # noqa: F401 pylint: disable=unused-import
from registry_sync_support import base_id, on_runner, versions  # noqa: F401 pylint: disable=unused-import
from support.ansible_runs import run_module, warnings_of

pytestmark = [pytest.mark.integration, pytest.mark.parametrize('on_runner', ['runner3'], indirect=True)]


def sync(node, versions, share, registry_url, tmp_path):  # pylint: disable=redefined-outer-name
    return run_module('image_sync', dict(name=versions.env, docker_host=node['docker_host'], state_dir=str(tmp_path / 'state'),
                                         tarball_dir=share, source='registry',
                                         registry=dict(url=registry_url, namespace=versions.namespace)))


def test_a_server_side_failure_is_tried_again_and_three_end_the_sync(on_runner, versions, registries, tmp_path):  # pylint: disable=redefined-outer-name
    v1, v2 = versions.v1, versions.v2
    with FlakyRegistry(registries['plain'], failures=1) as flaky, \
            forwarded(on_runner['netns'], [(flaky.address, flaky.address)]):
        pulled = sync(on_runner, versions, versions.share_of(tmp_path / 'v1', v1), flaky.address, tmp_path)
        assert not pulled.get('failed') and pulled['action'] == 'pull' and pulled['pull_attempts'] == 2, pulled
        assert flaky.failed == 1
        assert any('Attempt 1 of 3' in text and '500 Internal Server Error' in text for text in warnings_of(pulled)), pulled
        assert base_id(on_runner, versions.env) == versions.expected_id(on_runner, v1)

    with FlakyRegistry(registries['plain'], failures=1000) as flaky, \
            forwarded(on_runner['netns'], [(flaky.address, flaky.address)]):
        failed = sync(on_runner, versions, versions.share_of(tmp_path / 'v2', v1, v2), flaky.address, tmp_path)
        assert failed.get('failed') and '\n' not in failed['msg'] and '500 Internal Server Error' in failed['msg'], failed
        assert 'Nothing was tagged' in failed['msg'] and flaky.failed >= 3, (flaky.failed, failed)
        assert base_id(on_runner, versions.env) == versions.expected_id(on_runner, v1)
