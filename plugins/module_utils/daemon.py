# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A daemon whose Docker SDK client is connected only when needed, and the requests a sync makes without it.

Deciding that a runner is up to date takes one image inspect, while importing the Docker SDK (requests, urllib3)
takes about as long as the rest of an image_sync run. So for a local unix:// daemon without TLS, Daemon answers
image inspects over the standard library's HTTP client, and changing_client is a local_api.LocalClient (tag, load,
prune over the same socket) until something connects the SDK client; for every other daemon the SDK does everything.
The probe handles only a 200 or a 404: any other answer, or none, is left to the SDK, which reports it as every module
does. This module imports nothing outside the standard library (names.py and local_api.py are standard library only);
it imports client.py only when it falls back to the SDK, and client.py never imports it.
"""

from __future__ import annotations

import http.client
import json
from urllib.parse import quote

from ansible_collections.kohakuriver.docker.plugins.module_utils.local_api import LocalClient, UnixHTTPConnection
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_TIMEOUT

_UNIX = 'unix://'


class ProbeUnavailable(Exception):
    """The probe could not answer; ask the SDK."""


def probe_image(socket_path, reference, api_version=None, timeout=DEFAULT_TIMEOUT):
    """GET /images/<reference>/json on the daemon at socket_path: the inspect dict, None for 404; else ProbeUnavailable."""
    prefix = '/v%s' % api_version if api_version not in (None, '', 'auto') else ''
    connection = UnixHTTPConnection(socket_path, timeout)
    try:
        connection.request('GET', '%s/images/%s/json' % (prefix, quote(reference, safe='/:@')))
        response = connection.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeUnavailable(str(exc))
    finally:
        connection.close()
    if response.status == 404:
        return None
    if response.status != 200:
        raise ProbeUnavailable('HTTP %d' % response.status)
    try:
        return json.loads(body.decode('utf-8'))
    except ValueError as exc:
        raise ProbeUnavailable(str(exc))


class Daemon(object):
    """One daemon: `client` connects the SDK client on first use; inspect_image() probes first where it can."""

    def __init__(self, connect, docker_host=None, api_version=None, timeout=DEFAULT_TIMEOUT, tls=False):
        self._connect = connect
        self._client = None
        self._local = None
        self.socket_path = docker_host[len(_UNIX):] if docker_host and docker_host.startswith(_UNIX) and not tls else None
        self.api_version = api_version
        self.timeout = timeout

    @classmethod
    def of(cls, client):
        """A Daemon for an SDK client already connected."""
        return cls(lambda: client)

    @property
    def client(self):
        if self._client is None:
            self._client = self._connect()
        return self._client

    @property
    def changing_client(self):
        """The client a sync changes the daemon through: local_api.LocalClient where inspect_image probes (until the
        SDK client is connected), else the SDK client."""
        if self._client is None and self.socket_path:
            if self._local is None:
                self._local = LocalClient(self.socket_path, self.api_version, self.timeout)
            return self._local
        return self.client

    def inspect_image(self, reference):
        """The image's inspect dict, or None when the daemon has no such image."""
        if self._client is None and self.socket_path:
            try:
                return probe_image(self.socket_path, reference, self.api_version, self.timeout)
            except ProbeUnavailable:
                pass
        from ansible_collections.kohakuriver.docker.plugins.module_utils.client import inspect_or_none
        return inspect_or_none(self.client, reference)
