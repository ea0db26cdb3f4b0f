"""Which daemons daemon.Daemon may probe without the Docker SDK, and that it connects the SDK once."""

from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.daemon import Daemon


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
