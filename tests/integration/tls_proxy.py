"""A TLS endpoint for a Docker daemon that listens on a unix socket only.

TLSProxy listens on a free port of 127.0.0.1, demands a client certificate signed by the given CA, and forwards
each accepted connection byte for byte to the daemon's socket, one thread per connection.
"""

from __future__ import annotations

import selectors
import socket
import ssl
import threading

POLL_SECONDS = 0.1
IO_TIMEOUT_SECONDS = 30
CHUNK = 65536


def common_name(certificate):
    return dict(pair for rdn in certificate.get('subject', ()) for pair in rdn).get('commonName')


class TLSProxy(object):
    """tcp://127.0.0.1:<port> with mutual TLS in front of unix_socket; start() it, stop() it."""

    def __init__(self, unix_socket, server_cert, server_key, client_ca):
        self.unix_socket = unix_socket
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(server_cert, server_key)
        self.context.load_verify_locations(client_ca)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.listener.settimeout(POLL_SECONDS)
        self.address = 'tcp://127.0.0.1:%d' % self.listener.getsockname()[1]
        self.client_names = []
        self.refusals = []
        self._stopping = threading.Event()
        self._acceptor = threading.Thread(target=self._accept_loop, name='tls-proxy-accept', daemon=True)
        self._connections = []

    def start(self):
        self._acceptor.start()
        return self

    def stop(self):
        """Close the listener and every forwarded connection, joining their threads; safe to call twice."""
        self._stopping.set()
        if self._acceptor.is_alive():
            self._acceptor.join()
        for thread in self._connections:
            thread.join()
        self.listener.close()

    def _accept_loop(self):
        while not self._stopping.is_set():
            try:
                accepted = self.listener.accept()[0]
            except socket.timeout:
                continue
            thread = threading.Thread(target=self._serve, args=(accepted,), name='tls-proxy-conn', daemon=True)
            self._connections.append(thread)
            thread.start()

    def _serve(self, accepted):
        accepted.settimeout(IO_TIMEOUT_SECONDS)
        try:
            tls = self.context.wrap_socket(accepted, server_side=True)
        except OSError as exc:
            self.refusals.append(str(exc))
            accepted.close()
            return
        with tls, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as daemon:
            self.client_names.append(common_name(tls.getpeercert()))
            daemon.settimeout(IO_TIMEOUT_SECONDS)
            try:
                daemon.connect(self.unix_socket)
                self._forward(tls, daemon)
            except OSError:
                pass

    def _forward(self, tls, daemon):
        """Copy bytes both ways until either side closes or the proxy stops."""
        with selectors.DefaultSelector() as selector:
            selector.register(tls, selectors.EVENT_READ, daemon)
            selector.register(daemon, selectors.EVENT_READ, tls)
            while not self._stopping.is_set():
                for key, _events in selector.select(POLL_SECONDS):
                    source, target = key.fileobj, key.data
                    data = source.recv(CHUNK)
                    if not data:
                        return
                    target.sendall(data)
                    if source is tls:
                        while tls.pending():
                            daemon.sendall(tls.recv(CHUNK))
