# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP(S) to a registry over the standard library: what registry_client.py needs of an HTTP library, no more.

A timeout; TLS verified against the system CAs, a CA file, or not at all; basic auth; query parameters;
redirects followed (credentials dropped when the host changes, as requests does). No proxies and no environment
variables: the settings alone say where the registry is and whom to trust. requests would serve too, but importing
it (urllib3 behind it) costs a third of what a sync that pulls one small layer spends besides the pull itself.
Every request has a connection of its own: a sync asks a registry three or four small questions.
"""

from __future__ import annotations

import base64
import http.client
import ssl
from urllib.parse import urlencode, urljoin, urlsplit

MAX_REDIRECTS = 10
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 65536


def basic_authorization(username, password):
    """The Authorization header value of HTTP basic auth."""
    return 'Basic ' + base64.b64encode(('%s:%s' % (username, password)).encode('utf-8')).decode('ascii')


class HttpFailure(Exception):
    """No answer (refused, reset, timed out, TLS refused); tls and timeout say which kind."""

    def __init__(self, message, tls=False, timeout=False):
        super(HttpFailure, self).__init__(message)
        self.tls = tls
        self.timeout = timeout


def _failure(exc):
    text = ' '.join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, (ssl.SSLError, ssl.CertificateError)):
        return HttpFailure(text, tls=True)
    return HttpFailure(text, timeout=isinstance(exc, TimeoutError))


class Response(object):
    """An answer whose body is read only when asked: status_code, headers (case-insensitive get), iter_content, read."""

    def __init__(self, connection, answer):
        self._connection = connection
        self._answer = answer
        self.status_code = answer.status
        self.headers = answer.headers

    def iter_content(self, size=_CHUNK):
        try:
            while True:
                chunk = self._answer.read(size)
                if not chunk:
                    return
                yield chunk
        except (OSError, http.client.HTTPException) as exc:
            raise _failure(exc)

    def read(self, cap):
        """At most cap bytes of the body."""
        found = []
        for chunk in self.iter_content(min(cap, _CHUNK) or 1):
            found.append(chunk)
            cap -= len(chunk)
            if cap <= 0:
                break
        return b''.join(found)

    def close(self):
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


class HttpSession(object):
    """verify: True (the system CAs), a CA file, or False (no verification)."""

    def __init__(self, timeout, verify=True):
        self.timeout = timeout
        self.verify = verify
        self._tls = None

    def close(self):
        """Nothing stays open: each request's connection closes with its response."""

    def request(self, method, url, headers=None, params=None, auth=None):
        """The answer to method url (redirects followed); HttpFailure when there is none."""
        headers = dict(headers or {})
        if auth is not None:
            headers['Authorization'] = basic_authorization(*auth)
        if params:
            url += ('&' if '?' in url else '?') + urlencode(params)
        for dummy in range(MAX_REDIRECTS + 1):
            response = self._send(method, url, headers)
            location = response.headers.get('Location')
            if response.status_code not in _REDIRECTS or not location:
                return response
            response.close()
            target = urljoin(url, location)
            if urlsplit(target).netloc != urlsplit(url).netloc:
                headers.pop('Authorization', None)
            if response.status_code == 303 and method != 'HEAD':
                method = 'GET'
            url = target
        raise HttpFailure('more than %d redirects, the last to %s' % (MAX_REDIRECTS, url))

    def _send(self, method, url, headers):
        parts = urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise HttpFailure('%s is no http:// or https:// address' % url)
        target = (parts.path or '/') + ('?' + parts.query if parts.query else '')
        try:
            if parts.scheme == 'https':
                connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=self.timeout,
                                                         context=self._context())
            else:
                connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=self.timeout)
            try:
                connection.request(method, target, headers=headers)
                return Response(connection, connection.getresponse())
            except BaseException:
                connection.close()
                raise
        except (OSError, http.client.HTTPException, ssl.CertificateError) as exc:
            raise _failure(exc)

    def _context(self):
        if self._tls is None:
            if self.verify is False:
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            elif isinstance(self.verify, str):
                context = ssl.create_default_context(cafile=self.verify)
            else:
                context = ssl.create_default_context()
            self._tls = context
        return self._tls
