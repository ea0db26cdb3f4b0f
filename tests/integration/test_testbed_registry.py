"""The test bed's registries reach every runner daemon, each in its own network namespace (tests/testbed/README.md).

Proved with the docker CLI: an image of one unique layer is pushed from the Host and pulled on every runner (the
containerd image store of runner3 included) from the plain registry, through the pull-through cache (the origin
serves its blobs for the first runner only), and from the secure one (TLS verified by the daemon, htpasswd).
"""

from __future__ import annotations

import json

import pytest
import requests

from registry_support import (  # noqa: F401 pylint: disable=unused-import
    docker_cli, docker_login, origin_bytes_served, origin_log_offset, plain_api, pushed_unique_image, read_marker, registries,
    secure_api,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def host(testbed):
    return testbed['host']['docker_host']


@pytest.fixture(scope='module')
def plain_image(host, registries):
    with pushed_unique_image(host, registries['plain'], plain_api(registries)) as image:
        yield image


def _repo_digests(docker_host, reference):
    return json.loads(docker_cli(docker_host, 'image', 'inspect', reference).stdout)[0]['RepoDigests']


def _pull_and_check(runner, reference, image):
    """Pull on the runner, check the digest and the layer's content, and remove it again."""
    docker_host = runner['docker_host']
    try:
        docker_cli(docker_host, 'pull', reference)
        name = reference.rpartition(':')[0]
        assert '%s@%s' % (name, image['digest']) in _repo_digests(docker_host, reference), runner['name']
        assert read_marker(docker_host, reference) == image['marker'], runner['name']
    finally:
        docker_cli(docker_host, 'rmi', reference, check=False)


def test_every_runner_pulls_from_the_plain_registry(testbed, registries, plain_image):
    assert [runner['image_store'] for runner in testbed['runners']][:3] == ['graphdriver', 'graphdriver', 'containerd']
    for runner in testbed['runners']:
        _pull_and_check(runner, plain_image['reference'], plain_image)


def test_the_cache_serves_every_runner_and_the_origin_serves_its_blobs_for_the_first_only(testbed, registries, plain_image):
    """distribution 2.8's proxy fetches a blob it misses twice (once for the answer, once to store it), then never again."""
    manifest = plain_api(registries).manifest(plain_image['repository'], plain_image['digest'])
    one_copy = manifest['config']['size'] + sum(layer['size'] for layer in manifest['layers'])
    reference = '%s/%s:%s' % (registries['cache'], plain_image['repository'], plain_image['tag'])
    first, others = testbed['runners'][0], testbed['runners'][1:]
    since = origin_log_offset(registries)
    _pull_and_check(first, reference, plain_image)
    assert one_copy <= origin_bytes_served(registries, since, plain_image['repository']) <= 2 * one_copy
    since = origin_log_offset(registries)
    for runner in others:
        _pull_and_check(runner, reference, plain_image)
    assert origin_bytes_served(registries, since, plain_image['repository']) == 0


def test_the_secure_registry_asks_for_credentials_and_a_verified_certificate(registries):
    secure = registries['secure']
    assert secure_api(registries).get('').status_code == 200
    assert secure_api(registries, password='wrong-' + secure['password']).get('').status_code == 401
    with pytest.raises(requests.exceptions.SSLError):
        requests.get('https://%s/v2/' % secure['url'], timeout=10)  # the system CAs do not know the test bed's


def test_every_runner_pulls_from_the_secure_registry_verifying_tls(testbed, host, registries):
    secure = registries['secure']
    api = secure_api(registries)
    with docker_login(host, secure) as config, pushed_unique_image(host, secure['url'], api, config=config) as image:
        reference = '%s/%s:%s' % (secure['runner_url'], image['repository'], image['tag'])
        denied = docker_cli(testbed['runners'][0]['docker_host'], 'pull', reference, check=False)
        assert denied.returncode != 0 and ('no basic auth credentials' in denied.stderr or 'unauthorized' in denied.stderr), denied.stderr
        for runner in testbed['runners']:
            with docker_login(runner['docker_host'], secure, secure['runner_url']) as runner_config:
                try:
                    docker_cli(runner['docker_host'], 'pull', reference, config=runner_config)
                    assert '%s/%s@%s' % (secure['runner_url'], image['repository'], image['digest']) in _repo_digests(
                        runner['docker_host'], reference)
                    assert read_marker(runner['docker_host'], reference) == image['marker']
                finally:
                    docker_cli(runner['docker_host'], 'rmi', reference, check=False)
