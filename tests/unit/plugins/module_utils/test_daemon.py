"""Which daemons daemon.Daemon may probe without the Docker SDK, and that it connects the SDK once."""

from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.daemon import Daemon
from ansible_collections.kohakuriver.docker.plugins.module_utils.local_api import LocalClient


@pytest.mark.parametrize('docker_host, tls, socket_path', [
    ('unix:///var/run/docker.sock', False, '/var/run/docker.sock'),
    ('unix:///var/run/docker.sock', True, None),
    ('tcp://10.0.0.5:2376', False, None),
    ('ssh://root@runner1', False, None),
    (None, False, None),
])
def test_only_a_local_socket_without_tls_is_probed(docker_host, tls, socket_path):
    assert Daemon(lambda: None, docker_host, tls=tls).socket_path == socket_path


def test_the_client_is_connected_once_on_first_use():
    made = []
    daemon = Daemon(lambda: made.append(object()) or made[-1])
    assert made == []
    assert daemon.client is daemon.client is made[0] and len(made) == 1


def test_a_sync_changes_a_local_daemon_without_the_sdk_until_it_is_connected():
    made = []
    local = Daemon(lambda: made.append(object()) or made[-1], 'unix:///var/run/docker.sock')
    assert isinstance(local.changing_client, LocalClient) and local.changing_client is local.changing_client
    assert local.changing_client.api.socket_path == '/var/run/docker.sock' and made == []
    assert local.client is made[0] and local.changing_client is made[0]
    remote = Daemon(lambda: made.append(object()) or made[-1], 'tcp://10.0.0.5:2376')
    assert remote.changing_client is made[1]
