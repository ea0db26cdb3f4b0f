"""The test bed's registry pieces that need no daemon: addresses from the environment, the forwarder relaying bytes
(as a real process, into this process's own network namespace), and undoing a file it wrote outside its folder."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from testbed.config import Config
from testbed.forward import PROGRAM, parse_mapping
from testbed.registry_forward import FORWARD
from testbed.registry_variants import remove_file_entry


def test_the_variants_follow_the_registry_port_unless_told():
    config = Config({'KR_TESTBED_REGISTRY': '127.0.0.1:5066'})
    assert (config.cache_registry, config.secure_registry, config.secure_runner_url) == (
        '127.0.0.1:5166', '127.0.0.1:5509', '198.18.0.1:5509')
    config = Config({'KR_TESTBED_SECURE_REGISTRY': '127.0.0.1:6443', 'KR_TESTBED_SECURE_RUNNER_HOST': '198.18.0.7'})
    assert (config.cache_registry, config.secure_runner_url) == ('127.0.0.1:5100', '198.18.0.7:6443')


def test_a_mapping_names_the_namespace_the_listener_and_the_target():
    assert parse_mapping('/var/run/netns/kr-runner1,198.18.0.1:5443,127.0.0.1:5443') == (
        '/var/run/netns/kr-runner1', ('198.18.0.1', 5443), ('127.0.0.1', 5443))


def _free_port():
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


def _echo_server():
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(4)

    def serve():
        client, dummy = server.accept()
        with client:
            while True:
                data = client.recv(65536)
                if not data:
                    break
                client.sendall(data)
    threading.Thread(target=serve, daemon=True).start()
    return server


def _connect(port, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return socket.create_connection(('127.0.0.1', port), timeout=5)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.skipif(os.geteuid() != 0, reason='setns(2) needs root')
def test_the_forwarder_relays_both_ways_and_passes_the_end_of_the_stream():
    target, listen = _echo_server(), _free_port()
    mapping = '/proc/self/ns/net,127.0.0.1:%d,127.0.0.1:%d' % (listen, target.getsockname()[1])
    forwarder = subprocess.Popen([PROGRAM, FORWARD, mapping], executable=sys.executable, stdout=subprocess.PIPE)
    try:
        with _connect(listen) as client:
            payload = os.urandom(3 << 20)
            sender = threading.Thread(target=lambda: (client.sendall(payload), client.shutdown(socket.SHUT_WR)))
            sender.start()
            received = b''.join(iter(lambda: client.recv(1 << 16), b''))
            sender.join()
        assert received == payload
        with open('/proc/%d/cmdline' % forwarder.pid, 'rb') as handle:
            assert handle.read().split(b'\0')[0] == PROGRAM.encode()
    finally:
        forwarder.terminate()
        assert forwarder.wait(10) == 0
        target.close()


def test_a_file_entry_goes_with_the_folders_made_for_it(tmp_path):
    kept = tmp_path / 'certs.d'
    kept.mkdir()
    made = kept / '198.18.0.1:5443'
    made.mkdir()
    (made / 'ca.crt').write_text('pem')
    remove_file_entry({'kind': 'file', 'name': str(made / 'ca.crt'), 'folders': [str(made)]})
    assert not made.exists() and kept.is_dir()
    remove_file_entry({'kind': 'file', 'name': str(made / 'ca.crt'), 'folders': [str(made)]})  # already gone: nothing to do
