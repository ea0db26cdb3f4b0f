"""registry_client against a real HTTP(S) server in a thread: tags, digests, an index, auth challenges, bad answers."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.kohakuriver.docker.plugins.module_utils import registry_client
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_client import (
    DOCKER_MANIFEST, MANIFEST_CAP, OCI_INDEX, OCI_MANIFEST, ManifestNotFound, RegistryClient, RegistryUnreachable,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import RegistrySettings

CONFIG = 'sha256:' + 'c' * 64
LAYER = 'sha256:' + 'a' * 64


def digest_of(body):
    return 'sha256:' + hashlib.sha256(body).hexdigest()


def image_manifest(config=CONFIG, media_type=DOCKER_MANIFEST):
    return json.dumps({'schemaVersion': 2, 'mediaType': media_type, 'config': {'digest': config, 'size': 10},
                       'layers': [{'digest': LAYER, 'size': 1234}]}).encode()


class Registry(object):
    """What the fake registry holds and how it answers: manifests by repository and reference, auth mode, faults."""

    def __init__(self):
        self.manifests = {}  # (repository, reference) -> (body, media type)
        self.auth = None  # None | ('basic', user, password) | ('bearer', user, password)
        self.tampered = {}  # (repository, reference) -> body sent instead
        self.huge = None  # None | 'declared' | 'chunked'
        self.requests = []

    def put(self, repository, tag, body, media_type=DOCKER_MANIFEST):
        digest = digest_of(body)
        self.manifests[(repository, digest)] = (body, media_type)
        if tag:
            self.manifests[(repository, tag)] = (body, media_type)
        return digest


def handler_for(registry, base):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _authorized(self):
            header = self.headers.get('Authorization', '')
            if registry.auth is None:
                return True
            kind, user, password = registry.auth
            if kind == 'basic':
                return header == 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
            return header.startswith('Bearer tok-')

        def _challenge(self):
            kind = registry.auth[0]
            self.send_response(401)
            if kind == 'basic':
                self.send_header('WWW-Authenticate', 'Basic realm="registry"')
            else:
                self.send_header('WWW-Authenticate', 'Bearer realm="%s/token",service="fake"' % base[0])
            self.send_header('Content-Length', '0')
            self.end_headers()

        def _token(self):
            kind, user, password = registry.auth
            good = 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()
            if self.headers.get('Authorization') != good:
                self._send(401, b'{}')
                return
            scope = self.path.partition('scope=')[2].partition('&')[0]
            self._send(200, json.dumps({'token': 'tok-' + scope}).encode())

        def _send(self, status, body, media_type='application/json', digest=None, length=True):
            self.send_response(status)
            self.send_header('Content-Type', media_type)
            if digest:
                self.send_header('Docker-Content-Digest', digest)
            if length:
                self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            if self.command != 'HEAD':
                self.wfile.write(body)

        def do_GET(self):
            registry.requests.append((self.command, self.path))
            if self.path.startswith('/token'):
                return self._token()
            if not self._authorized():
                return self._challenge()
            if self.path == '/v2/':
                return self._send(200, b'{}')
            repository, _sep, reference = self.path[len('/v2/'):].rpartition('/manifests/')
            found = registry.manifests.get((repository, reference))
            if found is None:
                return self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            body, media_type = found
            digest = digest_of(body)
            if registry.huge:
                body = b' ' * (MANIFEST_CAP + 1)
                return self._send(200, body, media_type, digest, length=registry.huge == 'declared')
            return self._send(200, registry.tampered.get((repository, reference), body), media_type, digest)

        do_HEAD = do_GET

        def do_DELETE(self):
            registry.requests.append((self.command, self.path))
            if not self._authorized():
                return self._challenge()
            repository, _sep, reference = self.path[len('/v2/'):].rpartition('/manifests/')
            gone = [key for key, value in registry.manifests.items() if key[0] == repository and digest_of(value[0]) == reference]
            for key in gone:
                del registry.manifests[key]
            return self._send(202 if gone else 404, b'')
    return Handler


@pytest.fixture
def served():
    """A fake registry on 127.0.0.1 (plain HTTP): (Registry, url)."""
    registry, base = Registry(), []
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler_for(registry, base))
    url = '127.0.0.1:%d' % server.server_address[1]
    base.append('http://' + url)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield registry, url
    server.shutdown()
    server.server_close()


def one_line_failure(call, kind=Failure):
    with pytest.raises(kind) as caught:
        call()
    assert '\n' not in caught.value.msg
    return caught.value.msg


def test_a_tag_and_its_digest_give_the_same_verified_manifest(served):
    registry, url = served
    digest = registry.put('kohakuriver/env', '1700000000', image_manifest())
    client = RegistryClient(url)
    by_tag = client.manifest('kohakuriver/env', '1700000000')
    by_digest = client.manifest('kohakuriver/env', digest)
    for manifest in (by_tag, by_digest):
        assert (manifest.digest, manifest.config_digest, manifest.layers) == (digest, CONFIG, [(LAYER, 1234)])
        assert manifest.media_type == DOCKER_MANIFEST and manifest.index_digest is None
        assert manifest.platform_digest == digest
    assert client.resolve('kohakuriver/env', '1700000000') == digest
    assert client.exists('kohakuriver/env', digest)


def test_an_index_resolves_to_this_platforms_manifest_and_keeps_both_digests(served):
    registry, url = served
    mine = registry.put('ns/env', None, image_manifest(media_type=OCI_MANIFEST), OCI_MANIFEST)
    other = registry.put('ns/env', None, image_manifest(config='sha256:' + 'd' * 64), OCI_MANIFEST)
    arch = registry_client.machine_architecture()
    index = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
        {'digest': other, 'platform': {'os': 'linux', 'architecture': arch + 'x'}},
        {'digest': 'sha256:' + 'e' * 64, 'platform': {'os': 'unknown', 'architecture': 'unknown'}},
        {'digest': mine, 'platform': {'os': 'linux', 'architecture': arch}}]}).encode()
    index_digest = registry.put('ns/env', 'latest', index, OCI_INDEX)
    manifest = RegistryClient(url).manifest('ns/env', 'latest')
    assert (manifest.digest, manifest.index_digest, manifest.platform_digest) == (index_digest, index_digest, mine)
    assert manifest.config_digest == CONFIG and manifest.media_type == OCI_INDEX and manifest.size == len(index)


def test_an_index_without_this_platform_is_refused(served):
    registry, url = served
    index = json.dumps({'schemaVersion': 2, 'mediaType': OCI_INDEX, 'manifests': [
        {'digest': 'sha256:' + 'e' * 64, 'platform': {'os': 'windows', 'architecture': 'amd64'}}]}).encode()
    registry.put('ns/env', 'latest', index, OCI_INDEX)
    assert 'has no linux/' in one_line_failure(lambda: RegistryClient(url).manifest('ns/env', 'latest'))


def test_a_missing_manifest_is_a_one_line_not_found(served):
    _registry, url = served
    digest = 'sha256:' + 'f' * 64
    msg = one_line_failure(lambda: RegistryClient(url).manifest('ns/env', digest), ManifestNotFound)
    assert msg.startswith('Registry %s has no manifest ns/env@%s' % (url, digest))
    assert not RegistryClient(url).exists('ns/env', digest)


def test_a_body_that_is_not_the_digest_asked_for_is_refused(served):
    registry, url = served
    digest = registry.put('ns/env', 'latest', image_manifest())
    registry.tampered[('ns/env', digest)] = image_manifest(config='sha256:' + 'b' * 64)
    registry.tampered[('ns/env', 'latest')] = image_manifest(config='sha256:' + 'b' * 64)
    client = RegistryClient(url)
    assert 'changed it' in one_line_failure(lambda: client.manifest('ns/env', digest))
    assert 'changed it' in one_line_failure(lambda: client.manifest('ns/env', 'latest'))  # against Docker-Content-Digest


@pytest.mark.parametrize('huge', ['declared', 'chunked'])
def test_a_body_over_the_cap_is_refused_without_reading_it_all(served, huge):
    registry, url = served
    digest = registry.put('ns/env', 'latest', image_manifest())
    registry.huge = huge
    assert 'larger than %d bytes' % MANIFEST_CAP in one_line_failure(lambda: RegistryClient(url).manifest('ns/env', digest))


def test_basic_auth_right_wrong_and_missing_credentials(served):
    registry, url = served
    digest = registry.put('ns/env', 'latest', image_manifest())
    registry.auth = ('basic', 'alice', 's3cret')
    assert RegistryClient(url, 'alice', 's3cret').manifest('ns/env', digest).digest == digest
    msg = one_line_failure(lambda: RegistryClient(url, 'alice', 'wrong').manifest('ns/env', digest))
    assert 'refused the credentials of registry.username alice' in msg and 'wrong' not in msg
    assert 'needs credentials' in one_line_failure(lambda: RegistryClient(url).manifest('ns/env', digest))


def test_the_bearer_challenge_gets_a_token_once_per_scope(served):
    registry, url = served
    digest = registry.put('ns/env', 'latest', image_manifest())
    registry.auth = ('bearer', 'bob', 'pw')
    client = RegistryClient(url, 'bob', 'pw')
    assert client.resolve('ns/env', 'latest') == digest
    assert client.manifest('ns/env', digest).config_digest == CONFIG
    assert len([path for _method, path in registry.requests if path.startswith('/token')]) == 1
    assert 'refused the credentials' in one_line_failure(lambda: RegistryClient(url, 'bob', 'bad').resolve('ns/env', 'latest'))


def test_delete_removes_a_manifest_and_a_missing_one_is_fine(served):
    registry, url = served
    digest = registry.put('ns/env', 'latest', image_manifest())
    client = RegistryClient(url)
    client.delete('ns/env', digest)
    client.delete('ns/env', digest)
    assert not client.exists('ns/env', digest)


def free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_an_unreachable_registry_is_one_line():
    url = '127.0.0.1:%d' % free_port()
    msg = one_line_failure(lambda: RegistryClient(url, timeout=5).resolve('ns/env', 'latest'), RegistryUnreachable)
    assert msg.startswith('Cannot reach registry %s' % url)


def test_plain_http_is_refused_for_a_registry_that_is_not_loopback(served):
    registry, url = served
    registry.put('ns/env', 'latest', image_manifest())
    client = RegistryClient(url, timeout=5)
    client.loopback = False  # as a registry at a routable address would be; the server is the same
    assert 'registry.insecure: true' in one_line_failure(lambda: client.resolve('ns/env', 'latest'))
    client = RegistryClient(url, insecure=True, timeout=5)
    client.loopback = False
    assert client.resolve('ns/env', 'latest')


@pytest.fixture(scope='module')
def certificate(tmp_path_factory):
    folder = tmp_path_factory.mktemp('tls')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
                    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', str(folder / 'key.pem'),
                    '-out', str(folder / 'cert.pem')], check=True, capture_output=True)
    return folder / 'cert.pem', folder / 'key.pem'


def test_tls_needs_the_ca_that_signed_the_certificate(certificate):
    import ssl
    registry, base = Registry(), []
    registry.put('ns/env', 'latest', image_manifest())
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler_for(registry, base))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certificate[0]), str(certificate[1]))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    url = '127.0.0.1:%d' % server.server_address[1]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        msg = one_line_failure(lambda: RegistryClient(url, timeout=5).resolve('ns/env', 'latest'))
        assert msg.startswith('TLS to registry %s failed' % url) and 'registry.ca_path' in msg
        assert RegistryClient(url, ca_path=str(certificate[0]), timeout=5).resolve('ns/env', 'latest').startswith('sha256:')
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize('option, expected', [
    ({'url': 'https://reg.example.org'}, 'without a scheme'),
    ({'url': 'reg.example.org/path'}, 'without a scheme'),
    ({'url': 'reg.example.org:99999'}, 'not valid'),
    ({'url': 'reg.example.org', 'namespace': 'Upper'}, 'lowercase path components'),
    ({'url': 'reg.example.org', 'username': 'alice'}, 'both username and password'),
    ({'url': 'reg.example.org', 'ca_path': '/nonexistent/ca.pem'}, 'does not exist'),
    ({'url': 'reg.example.org', 'ca_path': 0}, 'registry.ca_path must be a string, not int'),  # not os.path's fd 0
    ({'url': 'reg.example.org', 'username': 'alice', 'password': 1234}, 'registry.password must be a string, not int'),
    ({'url': 'reg.example.org', 'colour': 'blue'}, 'unknown keys colour'),
    ('reg.example.org', 'must be a dict'),
])
def test_bad_settings_are_one_line(option, expected):
    assert expected in one_line_failure(lambda: RegistrySettings(option))


def test_settings_name_the_repository():
    settings = RegistrySettings({'url': 'reg.example.org:5000', 'namespace': 'team/ml'})
    assert settings.repository('env') == 'reg.example.org:5000/team/ml/env'
    assert settings.path('env') == 'team/ml/env' and not settings.loopback and not settings.insecure
    assert RegistrySettings({'url': '127.0.0.1:5000'}).loopback
    assert RegistrySettings.from_option(None) is None


TEXT = st.one_of(st.text(max_size=30), st.text(alphabet='az09-_.:/[]\n\0 @A', max_size=30),
                 st.sampled_from(['127.0.0.1:5000', 'reg.example.org', '[::1]:5000', 'a/b', '', 'localhost:0']))
SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), TEXT)


@settings(max_examples=150, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(SCALAR, st.dictionaries(st.sampled_from(['url', 'namespace', 'username', 'password', 'ca_path', 'insecure', 'x']),
                                         SCALAR, max_size=6)))
def test_random_registry_options_are_valid_settings_or_one_line(option):
    try:
        settings_ = RegistrySettings(option)
    except Failure as failure:
        assert failure.msg and '\n' not in failure.msg
        return
    assert settings_.repository('env') == '%s/%s/env' % (settings_.url, settings_.namespace)
    assert '\n' not in settings_.repository('env') and '/' not in settings_.url
