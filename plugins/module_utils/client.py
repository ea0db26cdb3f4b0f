# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One Docker SDK client factory: connection settings in, a connected client out, failures as one line.

The only file that imports the Docker SDK (and requests, urllib3): the other module_utils take the SDK's exceptions and helpers
from here, so a missing SDK is handled here alone (DOCKER_SDK_IMPORT_ERROR; module.py turns it into missing_required_lib).
"""

from __future__ import annotations

import os
import re
import sys
import traceback

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_DOCKER_HOST, DEFAULT_TIMEOUT

# The Docker SDK imports paramiko (and with it invoke and cryptography: 0.1-0.5 s) for ssh:// alone; leave it out
# here, and let connect() add the SDK's SSH transport when docker_host is ssh://.
_PARAMIKO_DEFERRED = 'paramiko' not in sys.modules
if _PARAMIKO_DEFERRED:
    sys.modules['paramiko'] = None  # makes `import paramiko` fail, so the SDK skips its SSH transport
try:
    import docker
    import docker.api.client
    from docker.constants import MINIMUM_DOCKER_API_VERSION
    from docker.tls import TLSConfig
    # Re-exported too, so that this file alone imports the SDK: the other module_utils take these names from here.
    from docker.errors import APIError, DockerException, NotFound  # pylint: disable=unused-import
    from docker.types import Mount  # pylint: disable=unused-import
    from docker.utils import parse_bytes, parse_repository_tag  # pylint: disable=unused-import
    from requests.adapters import HTTPAdapter
    from requests.exceptions import (  # pylint: disable=unused-import
        ConnectionError as RequestsConnectionError, RequestException, Timeout as RequestsTimeout,
    )
    # a cut stream can surface unwrapped by requests
    from urllib3.exceptions import HTTPError as TransportError  # pylint: disable=unused-import
except ImportError:
    DOCKER_SDK_IMPORT_ERROR = traceback.format_exc()
    DOCKER_ERRORS = ()

    class DockerException(Exception):
        """Stands in for the SDK's exceptions when it is missing: never raised, so nothing catches it by mistake."""

    APIError = NotFound = DockerException
    RequestsConnectionError = RequestsTimeout = TransportError = DockerException
    Mount = parse_bytes = parse_repository_tag = None
    HTTPAdapter = object
else:
    DOCKER_SDK_IMPORT_ERROR = None
    DOCKER_ERRORS = (DockerException, RequestException)
finally:
    if _PARAMIKO_DEFERRED:
        del sys.modules['paramiko']


_API_VERSION = re.compile(r'[0-9]+\.[0-9]+')


class DaemonUnreachable(Failure):
    pass


def validate_api_version(api_version):
    """'auto' or a version like 1.41; anything else is refused before a connection is tried."""
    if api_version in (None, '', 'auto') or _API_VERSION.fullmatch(str(api_version)):
        return str(api_version or 'auto')
    raise Failure('api_version %r is not valid: use auto or a Docker API version like 1.41.' % (api_version,))


def explain(exc):
    """One line for any Docker SDK or transport error, without the SDK's multi-line noise."""
    if isinstance(exc, APIError):
        detail = exc.explanation or str(exc)
        if isinstance(detail, bytes):
            detail = detail.decode('utf-8', 'replace')
        return ' '.join(str(detail).split())
    text = ' '.join(str(exc).split())
    return text or type(exc).__name__


def _tls_config(docker_host, tls, validate_certs, ca_path, client_cert, client_key):
    cert_dir = os.environ.get('DOCKER_CERT_PATH')
    if cert_dir:
        ca_path = ca_path or os.path.join(cert_dir, 'ca.pem')
        client_cert = client_cert or os.path.join(cert_dir, 'cert.pem')
        client_key = client_key or os.path.join(cert_dir, 'key.pem')
    if not (tls or validate_certs):
        return None
    if not docker_host.startswith('tcp://'):
        raise Failure('TLS options apply to tcp:// daemons only; docker_host is %s.' % docker_host)
    if bool(client_cert) != bool(client_key):
        raise Failure('Give both client_cert and client_key, or neither.')
    for option, path in (('ca_path', ca_path), ('client_cert', client_cert), ('client_key', client_key)):
        if path and not os.path.isfile(path):
            raise Failure('%s %s does not exist or is not a file.' % (option, path))
    return TLSConfig(
        client_cert=(client_cert, client_key) if client_cert else None,
        ca_cert=ca_path if validate_certs else None,
        verify=bool(validate_certs),
    )


def _add_ssh_transport(docker_host):
    """Give the Docker SDK the SSH transport its import left out (see the top of this file)."""
    try:
        import paramiko  # noqa: F401 pylint: disable=unused-import
    except ImportError:
        raise Failure('docker_host %s needs the Python library paramiko on the host that runs the module.' % docker_host)
    if not hasattr(docker.api.client, 'SSHHTTPAdapter'):
        from docker.transport.sshconn import SSHHTTPAdapter
        docker.api.client.SSHHTTPAdapter = SSHHTTPAdapter  # the name the SDK's own guarded import binds


class _Transport(object):
    """How a client reaches its daemon beyond the address: the system ssh binary for ssh://, the name checked on a TLS
    daemon's certificate, and where each request made is noted (debug)."""

    def __init__(self, use_ssh_client=False, tls_hostname=None, request_log=None):
        self.use_ssh_client = bool(use_ssh_client)
        self.tls_hostname = tls_hostname or None
        self.request_log = request_log


class _HostnameAdapter(HTTPAdapter):
    """HTTPS that checks the daemon's certificate for tls_hostname instead of the host name of docker_host."""

    def __init__(self, hostname):
        self._hostname = hostname
        super(_HostnameAdapter, self).__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs['assert_hostname'] = self._hostname
        super(_HostnameAdapter, self).init_poolmanager(*args, **kwargs)


def connect(docker_host=DEFAULT_DOCKER_HOST, api_version='auto', timeout=DEFAULT_TIMEOUT, tls=False,
            validate_certs=False, ca_path=None, client_cert=None, client_key=None, use_ssh_client=False,
            tls_hostname=None, request_log=None):
    """Return a docker.DockerClient that has answered a request, or raise DaemonUnreachable.

    use_ssh_client: reach an ssh:// daemon through the system ssh binary (its ~/.ssh/config: ProxyJump, bastions)
    instead of paramiko. tls_hostname: the name the daemon's certificate must carry. request_log: a list that gets
    one line per request made ('GET /v1.43/containers/json 200'), without query, headers or bodies."""
    docker_host = docker_host or DEFAULT_DOCKER_HOST
    api_version = validate_api_version(api_version)
    if docker_host.startswith('ssh://'):
        _add_ssh_transport(docker_host)
    tls_config = _tls_config(docker_host, tls, validate_certs, ca_path, client_cert, client_key)
    if tls_hostname and not tls_config:
        raise Failure('tls_hostname applies to TLS connections: set validate_certs (or tls) with a tcp:// docker_host.')
    transport = _Transport(use_ssh_client and docker_host.startswith('ssh://'), tls_hostname, request_log)
    try:
        if tls_config and api_version == 'auto':
            api_version = _server_api_version(docker_host, timeout, tls_config, transport)
        client = _client(docker_host, api_version, timeout, tls_config, transport)
        if api_version != 'auto':  # 'auto' has just asked the daemon for its API version
            client.ping()
    except Exception as exc:  # pylint: disable=broad-exception-caught
        raise DaemonUnreachable('Cannot reach the Docker daemon at %s: %s' % (docker_host, explain(exc)))
    if request_log is not None:
        client.api.hooks['response'].append(_note_request(request_log))
    return client


def _note_request(request_log):
    def note(response, *_args, **_kwargs):
        request = response.request
        path = request.path_url.split('?', 1)[0]
        request_log.append('%s %s %s' % (request.method, path, response.status_code))
    return note


def _client(docker_host, api_version, timeout, tls_config, transport):
    client = docker.DockerClient(base_url=docker_host, version=api_version, timeout=timeout, tls=tls_config or False,
                                 use_ssh_client=transport.use_ssh_client)
    if tls_config:
        # requests would let REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE replace ca_path and validate_certs (docker-py#2433)
        client.api.trust_env = False
        if transport.tls_hostname:
            client.api.mount('https://', _HostnameAdapter(transport.tls_hostname))
    return client


def _server_api_version(docker_host, timeout, tls_config, transport):
    """What version='auto' asks, by a client that trusts only the TLS options (see _client)."""
    asking = _client(docker_host, MINIMUM_DOCKER_API_VERSION, timeout, tls_config, transport)
    try:
        return asking.api.version(api_version=False)['ApiVersion']
    finally:
        asking.close()


def inspect_container(client, name):
    """The container's inspect dict, or None when the daemon has no such container."""
    try:
        return client.api.inspect_container(name)
    except APIError as exc:
        if getattr(exc, 'status_code', None) == 404:
            return None
        raise


def inspect_or_none(client, reference):
    """The image's inspect dict, or None when the daemon has no such image."""
    try:
        return client.api.inspect_image(reference)
    except APIError as exc:
        if getattr(exc, 'status_code', None) == 404:
            return None
        raise


def remove_container(client, container_id, removal_wait=60):
    """Remove the container and its anonymous volumes, running or not; one already gone is fine, and one that another
    client is removing at this moment (a task module ending, docker rm) is waited for until it is gone."""
    try:
        client.api.remove_container(container_id, force=True, v=True)
    except APIError as exc:
        status = getattr(exc, 'status_code', None)
        if status == 409 and 'already in progress' in explain(exc):
            _wait_until_removed(client, container_id, removal_wait)
        elif status != 404:
            raise


def _wait_until_removed(client, container_id, timeout):
    try:
        client.api.wait(container_id, timeout=timeout, condition='removed')
    except APIError as exc:
        if getattr(exc, 'status_code', None) != 404:
            raise


class ExecStream(object):
    """A started, attached exec without a TTY: its socket, and the bytes the HTTP reader had already taken from it.

    docker-py's exec_start(socket=True) returns the socket under the HTTP response and drops whatever the response's
    buffered reader read past the headers. A message the daemon sends at once, with the headers (`unable to find user
    x`, `executable file not found`), is then lost: over ssh:// (paramiko reads ahead) it was, every time we tried.
    This is the one place that reaches into the SDK's response for those bytes (`read_ahead`); it keeps the response
    referenced, since a collected response closes TLS sockets.
    """

    def __init__(self, client, exec_id):
        api = client.api
        self._response = api._post_json(api._url('/exec/{0}/start', exec_id), data={'Tty': False, 'Detach': False},
                                        headers={'Connection': 'Upgrade', 'Upgrade': 'tcp'}, stream=True)
        self.sock = api._get_raw_response_socket(self._response)
        self.read_ahead = _buffered_bytes(self._response.raw._fp.fp)

    def close(self):
        self.sock.close()


def _buffered_bytes(reader):
    """Take what a response's reader holds beyond the headers, without waiting for more."""
    if isinstance(getattr(reader, '_rbuffer', None), bytes):  # paramiko's BufferedFile (ssh://)
        data, reader._rbuffer = reader._rbuffer, bytes()
        return data
    raw_sock = getattr(getattr(reader, 'raw', None), '_sock', None)
    if raw_sock is None or not hasattr(reader, 'read1'):
        return b''
    timeout = raw_sock.gettimeout()
    raw_sock.settimeout(0)  # read1 reads the socket only when nothing is buffered; then it must not block
    try:
        return reader.read1(1 << 16) or b''
    except (OSError, ValueError):
        return b''
    finally:
        raw_sock.settimeout(timeout)


def path_stat(client, container_id, path):
    """The daemon's stat of a path in the container (name, size, mode, mtime, linkTarget), or None when it is missing.

    docker-py has no call for this: its get_archive is a GET that streams the whole path as a tar, too much for a
    folder. Docker answers the same request as a HEAD with the stat alone, in the X-Docker-Container-Path-Stat header
    (base64 JSON), and needs no program in the container to do so. A symbolic link is not followed: its stat has
    linkTarget, the target resolved inside the container.
    """
    api = client.api
    response = api.head(api._url('/containers/{0}/archive', container_id), params={'path': path}, timeout=api.timeout)
    if response.status_code == 404:
        return None
    api._raise_for_status(response)
    header = response.headers.get('X-Docker-Container-Path-Stat')
    return docker.utils.decode_json_header(header) if header else {}
