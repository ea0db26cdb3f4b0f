# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry API, for the small things the module reads itself: a tag's digest, a manifest by digest.

The Docker daemon moves the images (push, pull); this client only resolves tags and reads manifests (capped, their
digest verified) so that a module can check what a registry holds before anything big moves. Basic auth and the
Bearer token challenge (distribution's token auth, Harbor). Every failure is one line that names the registry and
what to fix. HTTP goes through registry_http.py (the standard library), not requests: see there why.
"""

from __future__ import annotations

import hashlib
import json
import platform
import re

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_http import HttpFailure, HttpSession, basic_authorization
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import is_loopback, validate_repository, validate_url

MANIFEST_CAP = 4 * 1024 * 1024
OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPT = ', '.join((OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_LIST))
_DIGEST = re.compile(r'sha256:[0-9a-f]{64}')
_TAG = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}')
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_ARCHITECTURES = {'x86_64': 'amd64', 'amd64': 'amd64', 'aarch64': 'arm64', 'arm64': 'arm64', 'armv7l': 'arm',
                  'armv6l': 'arm', 'i386': '386', 'i686': '386', 'ppc64le': 'ppc64le', 's390x': 's390x',
                  'riscv64': 'riscv64'}


class RegistryUnreachable(Failure):
    pass


class ManifestNotFound(Failure):
    pass


class Manifest(object):
    """A manifest read by digest or tag and verified.

    digest, media_type and size: what the reference named (for an image index: the index; pull by this digest).
    platform_digest: the linux/<this machine's architecture> manifest's digest (== digest when no index).
    config_digest, layers [(digest, size)]: the platform manifest's.
    """

    def __init__(self, digest, media_type, config_digest, layers, size, platform_digest=None):
        self.digest = digest
        self.media_type = media_type
        self.config_digest = config_digest
        self.layers = layers
        self.size = size
        self.platform_digest = platform_digest or digest

    @property
    def index_digest(self):
        """The index's digest when the reference named one, else None."""
        return self.digest if self.platform_digest != self.digest else None

    def __repr__(self):
        return 'Manifest(%s, config %s)' % (self.digest, self.config_digest)


def machine_architecture():
    machine = platform.machine().lower()
    return _ARCHITECTURES.get(machine, machine)


_ERRNO = re.compile(r'\[Errno -?\d+\] [^\'")]+|\[SSL: [^\]]+\] [^\'"(]*')


def _one_line(exc):
    """The cause of a failed request, without what wraps it: '[Errno 111] Connection refused'."""
    text = ' '.join(str(exc).split())
    found = _ERRNO.search(text)
    return (found.group(0).strip() if found else text) or type(exc).__name__


class RegistryClient(object):
    """The registry at url (host[:port]). HTTPS with the system CAs or ca_path; plain HTTP (or HTTPS unverified)
    only for a loopback registry or with insecure=True, tried after HTTPS as the Docker daemon does."""

    @classmethod
    def from_settings(cls, settings, timeout=30):
        """A client for a registry_settings.RegistrySettings (the validated `registry` option)."""
        return cls(settings.url, settings.username, settings.password, settings.ca_path, settings.insecure, timeout)

    def __init__(self, url, username=None, password=None, ca_path=None, insecure=False, timeout=30):
        self.url, host = validate_url(url)
        if bool(username) != bool(password):
            raise Failure('Registry %s: give both registry.username and registry.password, or neither.' % url)
        self._credentials = (username, password) if username else None
        self.loopback = is_loopback(host)
        self.insecure = bool(insecure)
        self.timeout = timeout
        self._session = HttpSession(timeout, verify=False if self.insecure else (ca_path or True))
        self._base = None
        self._tokens = {}  # scope -> Authorization header value

    def close(self):
        self._session.close()

    # -- reading

    def manifest(self, repository, reference):
        """The verified Manifest repository:reference (a tag or sha256:...); an index resolves to this platform's."""
        response = self._manifest_request('GET', repository, reference)
        body, media_type = self._body(response, repository, reference)
        digest = self._checked_digest(body, response, repository, reference)
        document = self._document(body, repository, reference)
        media_type = document.get('mediaType') or media_type
        if media_type in INDEX_TYPES or 'manifests' in document:
            platform_digest = self._platform_entry(document, repository, reference)
            inner = self.manifest(repository, platform_digest)
            if inner.index_digest:
                raise Failure('Registry %s: %s@%s is an index inside an index; push a plain image.'
                              % (self.url, repository, reference))
            return Manifest(digest, media_type, inner.config_digest, inner.layers, len(body), platform_digest)
        config, layers = self._config_and_layers(document, repository, reference)
        return Manifest(digest, media_type, config, layers, len(body))

    def resolve(self, repository, tag):
        """The digest repository:tag names now (what the registry reports, checked against the body if it omits it)."""
        with self._manifest_request('HEAD', repository, tag) as response:
            digest = response.headers.get('Docker-Content-Digest')
        if digest and _DIGEST.fullmatch(digest):
            return digest
        return self.manifest(repository, tag).digest

    def exists(self, repository, digest):
        """Does the registry hold manifest repository@digest? (No body is read.)"""
        try:
            self._manifest_request('HEAD', repository, digest).close()
        except ManifestNotFound:
            return False
        return True

    def delete(self, repository, digest):
        """Delete manifest repository@digest (the registry must allow deletes); a missing one is fine."""
        self._check_reference(repository, digest)
        if not _DIGEST.fullmatch(digest):
            raise Failure('Registry %s: delete takes a digest, not %r.' % (self.url, digest))
        response = self._request('DELETE', repository, '/v2/%s/manifests/%s' % (repository, digest))
        response.close()
        if response.status_code not in (200, 202, 404):
            raise Failure('Registry %s refused to delete %s@%s: HTTP %d.' % (self.url, repository, digest, response.status_code))

    # -- manifests

    def _check_reference(self, repository, reference):
        validate_repository(repository, 'repository')
        if not isinstance(reference, str) or not (_DIGEST.fullmatch(reference) or _TAG.fullmatch(reference)):
            raise Failure('Registry %s: %r is neither a tag nor a sha256 digest.' % (self.url, reference))

    def _manifest_request(self, method, repository, reference):
        self._check_reference(repository, reference)
        response = self._request(method, repository, '/v2/%s/manifests/%s' % (repository, reference),
                                 headers={'Accept': ACCEPT})
        if response.status_code == 404:
            response.close()
            raise ManifestNotFound('Registry %s has no manifest %s%s%s: push it first, or check the name and digest.'
                                   % (self.url, repository, '@' if reference.startswith('sha256:') else ':', reference))
        if response.status_code != 200:
            response.close()
            raise Failure('Registry %s answered HTTP %d to %s %s@%s.'
                          % (self.url, response.status_code, method, repository, reference))
        return response

    def _body(self, response, repository, reference):
        with response:
            declared = response.headers.get('Content-Length')
            if declared and declared.isdigit() and int(declared) > MANIFEST_CAP:
                raise self._too_big(repository, reference)
            chunks, total = [], 0
            try:
                for chunk in response.iter_content(65536):
                    total += len(chunk)
                    if total > MANIFEST_CAP:
                        raise self._too_big(repository, reference)
                    chunks.append(chunk)
            except HttpFailure as exc:
                raise RegistryUnreachable('Registry %s: reading %s@%s failed: %s' % (self.url, repository, reference, _one_line(exc)))
            media_type = response.headers.get('Content-Type', '').split(';', 1)[0].strip()
        return b''.join(chunks), media_type

    def _too_big(self, repository, reference):
        return Failure('Registry %s: manifest %s@%s is larger than %d bytes; that is no image manifest.'
                       % (self.url, repository, reference, MANIFEST_CAP))

    def _checked_digest(self, body, response, repository, reference):
        digest = 'sha256:' + hashlib.sha256(body).hexdigest()
        expected = reference if _DIGEST.fullmatch(reference) else None
        reported = response.headers.get('Docker-Content-Digest')
        if expected is None and reported and reported.startswith('sha256:'):
            expected = reported
        if expected is not None and digest != expected:
            raise Failure('Registry %s sent a manifest for %s@%s whose digest is %s: the registry or a proxy changed it;'
                          ' nothing was used.' % (self.url, repository, expected, digest))
        return digest

    def _document(self, body, repository, reference):
        try:
            document = json.loads(body.decode('utf-8'))
        except ValueError:
            document = None
        if not isinstance(document, dict):
            raise Failure('Registry %s: manifest %s@%s is not a JSON object.' % (self.url, repository, reference))
        return document

    def _platform_entry(self, index, repository, reference):
        arch = machine_architecture()
        entries = index.get('manifests')
        for entry in entries if isinstance(entries, list) else []:
            found = entry.get('platform') if isinstance(entry, dict) else None
            if isinstance(found, dict) and found.get('os') == 'linux' and found.get('architecture') == arch:
                digest = entry.get('digest')
                if isinstance(digest, str) and _DIGEST.fullmatch(digest):
                    return digest
        raise Failure('Registry %s: index %s@%s has no linux/%s manifest; push an image for this platform.'
                      % (self.url, repository, reference, arch))

    def _config_and_layers(self, document, repository, reference):
        config = document.get('config')
        layers = document.get('layers')
        config_digest = config.get('digest') if isinstance(config, dict) else None
        if not (isinstance(config_digest, str) and _DIGEST.fullmatch(config_digest) and isinstance(layers, list)):
            raise Failure('Registry %s: %s@%s is not an image manifest (schema 2 or OCI) with a sha256 config.'
                          % (self.url, repository, reference))
        found = []
        for layer in layers:
            if not (isinstance(layer, dict) and isinstance(layer.get('digest'), str) and isinstance(layer.get('size'), int)):
                raise Failure('Registry %s: %s@%s lists a layer without digest and size.' % (self.url, repository, reference))
            found.append((layer['digest'], layer['size']))
        return config_digest, found

    # -- transport and auth

    def _request(self, method, repository, path, headers=None):
        base = self._base or self._ping()
        headers = dict(headers or {})
        scope = 'repository:%s:%s' % (repository, 'delete' if method == 'DELETE' else 'pull')
        if scope in self._tokens:
            headers['Authorization'] = self._tokens[scope]
        response = self._send(method, base + path, headers=headers)
        if response.status_code == 401:
            response.close()
            headers['Authorization'] = self._authorize(response, scope)
            response = self._send(method, base + path, headers=headers)
            if response.status_code == 401:
                response.close()
                raise self._refused()
        if response.status_code == 403:
            response.close()
            raise Failure('Registry %s refuses %s to %s (HTTP 403): give registry credentials allowed to read it.'
                          % (self.url, method, repository))
        return response

    def _send(self, method, url, **kwargs):
        try:
            return self._session.request(method, url, **kwargs)
        except HttpFailure as exc:
            if exc.tls:
                raise self._tls_failure(exc)
            if exc.timeout:
                raise RegistryUnreachable('Registry %s did not answer within %s s: check registry.url and that it is up.'
                                          % (self.url, self.timeout))
            raise RegistryUnreachable('Cannot reach registry %s: %s; check registry.url and that it is up.'
                                      % (self.url, _one_line(exc)))

    def _tls_failure(self, exc):
        return Failure('TLS to registry %s failed (%s): give registry.ca_path (the CA that signed its certificate) or fix'
                       ' the certificate; a registry serving plain HTTP needs registry.insecure: true.'
                       % (self.url, _one_line(exc)))

    def _ping(self):
        """Find the scheme: HTTPS first; plain HTTP after it for a loopback registry or with insecure=True."""
        try:
            self._send('GET', 'https://%s/v2/' % self.url).close()
            self._base = 'https://' + self.url
        except (Failure, ValueError) as https_failure:
            if not (self.loopback or self.insecure):
                raise
            try:
                response = self._send('GET', 'http://%s/v2/' % self.url)
            except Failure:
                raise https_failure
            response.close()
            if response.status_code not in (200, 401):
                raise https_failure
            self._base = 'http://' + self.url
        return self._base

    def _refused(self):
        if self._credentials:
            return Failure('Registry %s refused the credentials of registry.username %s (HTTP 401): fix registry.username'
                           ' and registry.password.' % (self.url, self._credentials[0]))
        return Failure('Registry %s needs credentials (HTTP 401): set registry.username and registry.password.' % self.url)

    def _authorize(self, response, scope):
        challenge = response.headers.get('WWW-Authenticate', '')
        kind, _sep, rest = challenge.strip().partition(' ')
        if kind.lower() == 'basic':
            if not self._credentials:
                raise self._refused()
            self._tokens[scope] = basic_authorization(*self._credentials)
            return self._tokens[scope]
        if kind.lower() != 'bearer':
            raise Failure('Registry %s asks for authentication %r, which this client does not speak (Basic, Bearer).'
                          % (self.url, kind or challenge))
        params = dict(_CHALLENGE_PARAM.findall(rest))
        realm = params.get('realm')
        if not realm:
            raise Failure('Registry %s sent a Bearer challenge without a realm.' % self.url)
        self._check_realm(realm)
        query = {'scope': params.get('scope') or scope}
        if params.get('service'):
            query['service'] = params['service']
        token_response = self._send('GET', realm, params=query, auth=self._credentials)
        with token_response:
            if token_response.status_code in (401, 403):
                raise self._refused()
            if token_response.status_code != 200:
                raise Failure('Registry %s: its token service %s answered HTTP %d.' % (self.url, realm, token_response.status_code))
            try:
                answer = json.loads(token_response.read(MANIFEST_CAP).decode('utf-8'))
            except (ValueError, HttpFailure):
                answer = None
        token = (answer.get('token') or answer.get('access_token')) if isinstance(answer, dict) else None
        if not isinstance(token, str) or not token:
            raise Failure('Registry %s: its token service %s gave no token.' % (self.url, realm))
        self._tokens[scope] = 'Bearer ' + token
        return self._tokens[scope]

    def _check_realm(self, realm):
        scheme, _sep, rest = realm.partition('://')
        host = re.split(r'[/:]', rest.lstrip('['), 1)[0] if rest else ''
        if scheme == 'https' or (scheme == 'http' and (self.insecure or (is_loopback(host) and self.loopback))):
            return
        raise Failure('Registry %s sends its token realm %s over plain HTTP: credentials go over HTTPS only; set'
                      ' registry.insecure: true to allow it.' % (self.url, realm))
