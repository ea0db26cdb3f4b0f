"""The test bed's registries for tests: fixture `registries`, a small registry API client, a unique pushed image,
and the bytes the origin registry served (read from its log).

`registries` is `testbed["registries"]` (tests/testbed/README.md, "Registries"):
    {"plain": "127.0.0.1:5000", "cache": "127.0.0.1:5100",
     "secure": {"url": "127.0.0.1:5443", "runner_url": "198.18.0.1:5443", "ca": ".../ca.crt",
                "username": "kohakuriver", "password": "...", "certs_d": "/etc/docker/certs.d/198.18.0.1:5443/ca.crt"},
     "origin_log": ".../registry/registry.log", "cache_storage": ".../registry-cache/data"}
Every address answers the same on the Host and inside every runner's network namespace (the runners' daemons pull
from them); `secure["runner_url"]` answers only inside the runners' namespaces, where dockerd verifies its TLS
against the CA the test bed put in /etc/docker/certs.d.
Push only under a repository of the test's own (`krtest-<hex>/...`) and delete it afterwards (`RegistryAPI.delete`).
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

import docker
import pytest
import requests

from testbed.forward import PROGRAM, in_netns
from testbed.processes import spawn, stop_process, wait_for
from testbed.registry_log import bytes_served, log_offset
from testbed.registry_forward import FORWARD

MANIFEST_TYPES = ', '.join((
    'application/vnd.docker.distribution.manifest.v2+json', 'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.index.v1+json'))


@pytest.fixture(scope='session')
def registries(testbed):
    """The test bed's registries (see the module docstring); a copy, so that a test may change its own."""
    found = testbed.get('registries')
    if not found:
        pytest.fail('the test bed has no registries (state from an older test bed): run python3 tests/testbed/testbed.py up',
                    pytrace=False)
    return copy.deepcopy(found)


def registry_option(registries, variant='plain', namespace=None):
    """The modules' `registry` option (issue 16) for one of the test bed's registries: 'plain', 'cache' or 'secure'
    (with its credentials and CA); namespace: a namespace of the test's own (unique_env)."""
    if variant == 'secure':
        secure = registries['secure']
        option = {'url': secure['url'], 'username': secure['username'], 'password': secure['password'], 'ca_path': secure['ca']}
    else:
        option = {'url': registries[variant]}
    if namespace:
        option['namespace'] = namespace
    return option


class RegistryAPI:
    """The registry HTTP API v2 with requests (not the collection's registry client): digests, tags, delete."""

    def __init__(self, address, ca=None, username=None, password=None):
        self.base = '%s://%s/v2/' % ('https' if ca else 'http', address)
        self.session = requests.Session()
        self.verify = ca or True  # per request: REQUESTS_CA_BUNDLE in the environment would override the session's
        if username:
            self.session.auth = (username, password)

    def call(self, method, path, **kwargs):
        return self.session.request(method, self.base + path, timeout=30, verify=self.verify, **kwargs)

    def get(self, path, **kwargs):
        return self.call('GET', path, **kwargs)

    def digest(self, repository, reference):
        """The manifest digest a tag (or digest) names, or None when the registry does not have it."""
        answer = self.call('HEAD', '%s/manifests/%s' % (repository, reference), headers={'Accept': MANIFEST_TYPES})
        return answer.headers.get('Docker-Content-Digest') if answer.status_code == 200 else None

    def manifest(self, repository, reference):
        answer = self.get('%s/manifests/%s' % (repository, reference), headers={'Accept': MANIFEST_TYPES})
        answer.raise_for_status()
        return answer.json()

    def tags(self, repository):
        answer = self.get('%s/tags/list' % repository)
        return (answer.json().get('tags') or []) if answer.status_code == 200 else []

    def delete(self, repository):
        """Delete every manifest a tag of repository names (its blobs stay until a garbage collection)."""
        digests = {self.digest(repository, tag) for tag in self.tags(repository)} - {None}
        for digest in digests:
            answer = self.call('DELETE', '%s/manifests/%s' % (repository, digest))
            assert answer.status_code in (202, 404), answer.text


def plain_api(registries):
    return RegistryAPI(registries['plain'])


def secure_api(registries, **changes):
    secure = dict(registries['secure'], **changes)
    return RegistryAPI(secure['url'], ca=secure['ca'], username=secure['username'], password=secure['password'])


def docker_cli(docker_host, *words, config=None, check=True, timeout=300, stdin=None):
    """The docker CLI against docker_host; config: a DOCKER_CONFIG folder (credentials of `docker login`)."""
    env = dict(os.environ, DOCKER_CONFIG=config) if config else None
    completed = subprocess.run(['docker', '-H', docker_host] + list(words), capture_output=True, text=True, timeout=timeout,
                               env=env, check=False, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    if check:
        assert completed.returncode == 0, 'docker %s: %s' % (' '.join(words), completed.stderr)
    return completed


@contextlib.contextmanager
def docker_login(docker_host, secure, url=None):
    """A DOCKER_CONFIG folder holding `docker login` credentials for the secure registry (at url, default its url)."""
    with tempfile.TemporaryDirectory(prefix='kr-docker-config-') as folder:
        docker_cli(docker_host, 'login', '-u', secure['username'], '--password-stdin', url or secure['url'], config=folder,
                   stdin=secure['password'], timeout=60)
        yield folder


def unique_layer(marker):
    """A one-file image layer (a tar holding /marker), unique to the caller."""
    data = marker.encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as archive:
        info = tarfile.TarInfo('marker')
        info.size, info.mtime = len(data), int(time.time())
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@contextlib.contextmanager
def pushed_unique_image(host_docker_host, address, api, config=None):
    """An image of one unique layer, imported on the Host and pushed to the registry at address (credentials in
    config, when the registry asks for them): {repository, tag, reference, digest, marker}. The Host's tag and the
    registry's manifest go afterwards."""
    marker = 'krtest-%s' % uuid.uuid4().hex[:10]
    repository, tag = '%s/layer' % marker, '1'
    reference = '%s/%s:%s' % (address, repository, tag)
    with contextlib.closing(docker.APIClient(base_url=host_docker_host, version='auto', timeout=120)) as client:
        client.import_image_from_data(unique_layer(marker), repository='%s/%s' % (address, repository), tag=tag)
        try:
            docker_cli(host_docker_host, 'push', reference, config=config)
            digest = api.digest(repository, tag)
            assert digest, 'the registry at %s has no %s after the push' % (address, reference)
            yield {'repository': repository, 'tag': tag, 'reference': reference, 'digest': digest, 'marker': marker}
        finally:
            api.delete(repository)
            client.remove_image(reference, force=True)


def read_marker(docker_host, reference):
    """/marker of the image, read by the docker CLI from a container created (never started) from it."""
    created = docker_cli(docker_host, 'create', reference, '/marker').stdout.strip()
    try:
        copied = subprocess.run(['docker', '-H', docker_host, 'cp', created + ':/marker', '-'], capture_output=True, timeout=60, check=True)
        with tarfile.open(fileobj=io.BytesIO(copied.stdout)) as archive:
            return archive.extractfile('marker').read().decode()
    finally:
        docker_cli(docker_host, 'rm', '-f', created, check=False)


def origin_log_offset(registries):
    """Where the origin registry's log ends now: pass it to origin_bytes_served after the traffic to measure."""
    return log_offset(registries['origin_log'])


def origin_bytes_served(registries, since, repository, kind='blobs'):
    """Bytes the origin (plain) registry wrote answering GETs of repository's blobs (kind 'manifests': manifests;
    None: both) since a log offset (tests/testbed/registry_log.py)."""
    return bytes_served(registries['origin_log'], since, repository, kind)


@contextlib.contextmanager
def forwarded(netns, mappings, addresses=()):
    """The test bed's forwarder (tests/testbed/forward.py) for a network namespace of the test's own (a throwaway
    dockerd's): mappings [(listen 'host:port' inside netns, target 'host:port' here)]; addresses are first added to
    that namespace's lo (it goes with the namespace)."""
    netns_path = '/var/run/netns/' + netns
    for address in addresses:
        subprocess.run(['ip', '-n', netns, 'addr', 'add', address + '/32', 'dev', 'lo'], check=True, capture_output=True)
    argv = [PROGRAM, FORWARD] + ['%s,%s,%s' % (netns_path, listen, target) for listen, target in mappings]
    with tempfile.TemporaryDirectory(prefix='kr-forward-') as folder:
        entry = spawn('forwarder', netns, argv, os.path.join(folder, 'forwarder.log'), executable=sys.executable)
        try:
            wait_for('forwarder into %s' % netns, lambda: all(_listening(netns_path, listen) for listen, dummy in mappings), 10, entry)
            yield entry
        finally:
            stop_process(entry)


def _listening(netns_path, address):
    host, dummy, port = address.rpartition(':')

    def connect():
        with contextlib.suppress(OSError), socket.create_connection((host, int(port)), timeout=1):
            return True
        return False
    return in_netns(netns_path, connect)
