"""daemon.py: the SDK-free image inspect over a runner's unix socket, against both engine generations."""

from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.daemon import Daemon, ProbeUnavailable, probe_image
from runner_helpers import runner  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration

REGISTRY_IMAGE = '127.0.0.1:5000/kohakuriver-test/busybox:latest'


def socket_of(runner):
    assert runner['docker_host'].startswith('unix://')
    return runner['docker_host'][len('unix://'):]


def test_the_probe_answers_as_the_sdk_does(runner):
    by_sdk = runner['client'].api.inspect_image(REGISTRY_IMAGE)
    assert probe_image(socket_of(runner), REGISTRY_IMAGE) == by_sdk
    assert probe_image(socket_of(runner), by_sdk['Id'], api_version=runner['client'].api.api_version) == by_sdk


def test_the_probe_says_none_for_an_image_the_daemon_lacks(runner, unique_env):
    assert probe_image(socket_of(runner), 'kohakuriver/%s:base' % unique_env) is None


def test_the_probe_gives_up_on_what_it_cannot_answer(runner, tmp_path):
    with pytest.raises(ProbeUnavailable):
        probe_image(str(tmp_path / 'no-daemon.sock'), REGISTRY_IMAGE)
    with pytest.raises(ProbeUnavailable, match='HTTP 400'):
        probe_image(socket_of(runner), 'Not A Valid Reference')


def test_a_daemon_connects_the_sdk_only_when_the_probe_cannot_answer(runner, tmp_path):
    connects = []

    def connect():
        connects.append(1)
        return runner['client']

    local = Daemon(connect, runner['docker_host'])
    assert local.inspect_image(REGISTRY_IMAGE)['Id'] == runner['client'].api.inspect_image(REGISTRY_IMAGE)['Id']
    assert connects == []  # answered by the probe, without the SDK client
    unreachable = Daemon(connect, 'unix://%s' % (tmp_path / 'no-daemon.sock'))
    assert unreachable.inspect_image(REGISTRY_IMAGE)['Id'] == runner['client'].api.inspect_image(REGISTRY_IMAGE)['Id']
    assert connects == [1]  # no socket: the SDK client was connected and answered
    assert Daemon.of(runner['client']).inspect_image('kohakuriver/never-there:base') is None
