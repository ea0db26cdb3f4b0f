"""An HTTP proxy in front of one of the test bed's registries that answers the first `failures` blob GETs with 500 and
distribution's error body, as distribution's pull-through cache answers concurrent misses of one blob; everything
else passes through unchanged."""

from __future__ import annotations

import http.client
import http.server
import socket
import threading

UNKNOWN_ERROR = b'{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":null}]}\n'
_HOP_HEADERS = ('connection', 'keep-alive', 'transfer-encoding', 'proxy-connection')


class FlakyRegistry:
    """with FlakyRegistry('127.0.0.1:5000', failures=1) as flaky: flaky.address is 127.0.0.1:<port>; flaky.failed
    counts the 500s it answered."""

    def __init__(self, target, failures):
        self.target = target
        self.failures = failures
        self.failed = 0
        self.lock = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), self._handler())
        self.server.daemon_threads = True
        self.address = '127.0.0.1:%d' % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc_info):
        self.server.shutdown()
        self.server.server_close()

    def fails_now(self, method, path):
        with self.lock:
            if method == 'GET' and '/blobs/' in path and self.failed < self.failures:
                self.failed += 1
                return True
            return False

    def _handler(self):
        flaky = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.0'  # one request per connection: bodies end when the connection does

            def log_message(self, *args):  # pylint: disable=arguments-differ
                pass

            def handle(self):
                # The daemon tries TLS first and falls back to plain HTTP only on an answer that starts with HTTP/.
                if self.connection.recv(1, socket.MSG_PEEK) == b'\x16':
                    self.wfile.write(b'HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n')
                    return
                super().handle()

            def relay(self):
                if flaky.fails_now(self.command, self.path):
                    self.send_response(500, 'Internal Server Error')
                    self.send_header('Content-Type', 'application/json; charset=utf-8')
                    self.send_header('Content-Length', str(len(UNKNOWN_ERROR)))
                    self.end_headers()
                    self.wfile.write(UNKNOWN_ERROR)
                    return
                length = int(self.headers.get('Content-Length') or 0)
                body = self.rfile.read(length) if length else None
                upstream = http.client.HTTPConnection(flaky.target, timeout=120)
                try:
                    headers = dict((key, value) for key, value in self.headers.items() if key.lower() not in _HOP_HEADERS)
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    answer = upstream.getresponse()
                    self.send_response(answer.status, answer.reason)
                    for key, value in answer.getheaders():
                        if key.lower() not in _HOP_HEADERS:
                            self.send_header(key, value)
                    self.end_headers()
                    while True:
                        chunk = answer.read(1 << 16)
                        if not chunk:
                            break
                        self.wfile.write(chunk)
                finally:
                    upstream.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = relay

        return Handler
