# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker API calls a sync makes, over the standard library's HTTP client, for a local unix:// daemon.

Importing the Docker SDK (requests, urllib3) takes about as long as the rest of an update sync that sends a few MB,
or of a rollback that only re-tags. So where daemon.py probes (a local unix socket, no TLS, no debug), the sync's
changes go through LocalClient too: its `api` answers the few docker-py APIClient calls syncload.py and
registry_pull.py make (inspect, list, info, tag, load, pull, remove), with the same arguments and results. An error
answer raises LocalApiError (its status_code and the daemon's message), a connection that fails LocalTransportError
(an OSError).

The helpers at the bottom treat those and the SDK's errors alike, without importing the SDK: the SDK can only have
raised an error once it is imported, so its types are taken from client.py then.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import sys
from urllib.parse import quote, urlencode

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_TIMEOUT

_CLIENT_MODULE = 'ansible_collections.kohakuriver.docker.plugins.module_utils.client'
_SAFE = '/:@'


class LocalApiError(Exception):
    """The daemon answered with an error status (status_code) and a message (explanation)."""

    def __init__(self, status_code, explanation):
        super(LocalApiError, self).__init__('%d %s' % (status_code, explanation))
        self.status_code = status_code
        self.explanation = explanation


class LocalTransportError(OSError):
    """The daemon could not be reached, or the connection broke."""


class UnixHTTPConnection(http.client.HTTPConnection):
    # ansible.module_utils.urls has one too, but importing that module costs most of what going without the SDK saves.
    def __init__(self, socket_path, timeout):
        super(UnixHTTPConnection, self).__init__('localhost', timeout=timeout)
        self.socket_path = socket_path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def _message(status, body):
    try:
        found = json.loads(body.decode('utf-8'))
        text = found.get('message') if isinstance(found, dict) else None
    except ValueError:
        text = None
    return ' '.join(str(text or body.decode('utf-8', 'replace') or 'HTTP %d' % status).split())


def json_messages(text):
    """The JSON values of a stream of them (the load endpoint's answer), in order."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while True:
        while at < len(text) and text[at].isspace():
            at += 1
        if at >= len(text):
            return found
        value, at = decoder.raw_decode(text, at)
        found.append(value)


class LocalApi(object):
    """The subset of docker-py's APIClient that syncload.py and registry_pull.py call, for the daemon at socket_path."""

    def __init__(self, socket_path, api_version=None, timeout=DEFAULT_TIMEOUT):
        self.socket_path = socket_path
        self.prefix = '/v%s' % api_version if api_version not in (None, '', 'auto') else ''
        self.timeout = timeout

    def _url(self, path, params):
        return self.prefix + path + ('?' + urlencode(params) if params else '')

    @staticmethod
    def _broken(method, path, exc):
        what = ' '.join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, ConnectionError):  # refused, reset, broken pipe, closed without an answer
            what = 'Connection to the daemon broke (%s)' % what
        return LocalTransportError('%s %s: %s' % (method, path, what))

    def _call(self, method, path, params=None, body=None, headers=None):
        """(status, body bytes) of one request; an error status raises LocalApiError, no answer LocalTransportError."""
        connection = UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            try:
                connection.request(method, self._url(path, params), body=body, headers=headers or {})
            except OSError:
                response = self._early_answer(connection) if body is not None else None
                if response is None:
                    raise
            else:
                response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise self._broken(method, path, exc)
        finally:
            connection.close()
        if response.status >= 400:
            raise LocalApiError(response.status, _message(response.status, data))
        return response.status, data

    def _stream(self, method, path, params=None, headers=None):
        """The JSON messages of an answer that streams them (a pull's progress), read as they come; an error status
        raises LocalApiError here, no answer LocalTransportError (here or while reading)."""
        connection = UnixHTTPConnection(self.socket_path, self.timeout)
        try:
            connection.request(method, self._url(path, params), headers=headers or {})
            response = connection.getresponse()
            if response.status >= 400:
                raise LocalApiError(response.status, _message(response.status, response.read()))
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise self._broken(method, path, exc)
        except LocalApiError:
            connection.close()
            raise
        return self._messages(connection, response, method, path)

    def _messages(self, connection, response, method, path):
        try:
            for line in iter(response.readline, b''):
                yield from json_messages(line.decode('utf-8'))
        except (OSError, http.client.HTTPException) as exc:
            raise self._broken(method, path, exc)
        except ValueError as exc:
            raise LocalTransportError('%s %s: the daemon answered no JSON (%s)' % (method, path, exc))
        finally:
            connection.close()

    @staticmethod
    def _early_answer(connection):
        """The answer of a daemon that stopped reading the body (and said why, as dockerd does when the archive is
        bad), else None."""
        try:
            return connection.getresponse()
        except (OSError, http.client.HTTPException):
            return None

    def _json(self, method, path, params=None):
        data = self._call(method, path, params)[1]
        try:
            return json.loads(data.decode('utf-8')) if data else None
        except ValueError as exc:
            raise LocalTransportError('%s %s: the daemon answered no JSON (%s)' % (method, path, exc))

    def inspect_image(self, image):
        return self._json('GET', '/images/%s/json' % quote(image, safe=_SAFE))

    def images(self, name=None, quiet=False, all=False, filters=None):  # pylint: disable=redefined-builtin
        filters = dict(filters or {})
        if name:
            filters['reference'] = name
        params = {'only_ids': int(bool(quiet)), 'all': int(bool(all))}
        if filters:
            params['filters'] = json.dumps(dict((key, value if isinstance(value, list) else [value])
                                                for key, value in filters.items()))
        found = self._json('GET', '/images/json', params) or []
        return [image['Id'] for image in found] if quiet else found

    def containers(self, all=False):  # pylint: disable=redefined-builtin
        return self._json('GET', '/containers/json', {'all': int(bool(all)), 'limit': -1}) or []

    def info(self):
        return self._json('GET', '/info')

    def tag(self, image, repository, tag=None, force=False):
        params = {'repo': repository, 'force': int(bool(force))}
        if tag:
            params['tag'] = tag
        return self._call('POST', '/images/%s/tag' % quote(image, safe=_SAFE), params)[0] == 201

    def remove_image(self, image, force=False, noprune=False):
        return self._json('DELETE', '/images/%s' % quote(image, safe=_SAFE), {'force': int(force), 'noprune': int(noprune)})

    def pull(self, repository, tag=None, stream=True, decode=True, auth_config=None):
        """POST /images/create: the daemon pulls repository:tag (or @digest, tag='sha256:...'); its progress messages,
        decoded, as they come. Only docker-py's stream=True, decode=True. auth_config: username and password (sent as
        X-Registry-Auth); without it the registry is asked anonymously."""
        if not (stream and decode):
            raise ValueError('LocalApi.pull streams decoded messages only')
        headers = {}
        if auth_config:
            headers['X-Registry-Auth'] = base64.urlsafe_b64encode(json.dumps(auth_config).encode('utf-8')).decode('ascii')
        params = {'fromImage': repository}
        if tag:
            params['tag'] = tag
        return self._stream('POST', '/images/create', params, headers)

    def load_image(self, data, quiet=None):
        """POST data (an iterable of bytes with a len()) to /images/load; the answer's JSON messages."""
        headers = {'Content-Type': 'application/x-tar', 'Content-Length': str(len(data))}
        answer = self._call('POST', '/images/load', {'quiet': int(bool(quiet))} if quiet is not None else None, data, headers)[1]
        try:
            return json_messages(answer.decode('utf-8'))
        except ValueError as exc:
            raise LocalTransportError('POST /images/load: the daemon answered no JSON (%s)' % exc)


class LocalClient(object):
    """Stands in for a docker.DockerClient where only `api` is used."""

    def __init__(self, socket_path, api_version=None, timeout=DEFAULT_TIMEOUT):
        self.api = LocalApi(socket_path, api_version, timeout)

    def close(self):
        """Nothing to close: every request has a connection of its own."""


def _sdk():
    """client.py once it or the SDK is imported (only then can the SDK have raised an error), else None."""
    if _CLIENT_MODULE not in sys.modules and 'docker' not in sys.modules:
        return None
    from ansible_collections.kohakuriver.docker.plugins.module_utils import client
    return client


def refused_errors():
    """The exception types of a daemon's error answer, for an except clause: LocalApiError, and the SDK's APIError."""
    sdk = _sdk()
    return (LocalApiError,) + ((sdk.APIError,) if sdk is not None else ())


def transport_errors():
    """Every exception type of a daemon that failed, or failed to answer, on either client (OSError included)."""
    sdk = _sdk()
    return (LocalApiError, OSError) + ((sdk.TransportError,) + sdk.DOCKER_ERRORS if sdk is not None else ())


def explain(exc):
    """One line for an error of either client."""
    if isinstance(exc, LocalApiError):
        return exc.explanation
    sdk = _sdk()
    if sdk is not None:
        return sdk.explain(exc)
    return ' '.join(str(exc).split()) or type(exc).__name__


def inspect_or_none(client, reference):
    """The image's inspect dict, or None when the daemon (of either client) has no such image."""
    try:
        return client.api.inspect_image(reference)
    except refused_errors() as exc:
        if getattr(exc, 'status_code', None) == 404:
            return None
        raise
