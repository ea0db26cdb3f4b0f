"""Reading the daemon's pull messages on either image store, and the IDs a pulled image may have."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_client import Manifest
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_pull import _SERVER_SIDE, _merged, manifest_ids, pull_client, pull_counts
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import RegistrySettings

BASE = 'sha256:d84f1a20bd33' + '0' * 52
TOP = 'sha256:fde21f0bb654' + '1' * 52
LAYERS = [(BASE, 1068963), (TOP, 107)]


def test_the_classic_store_reports_pulled_and_held_layers():
    events = [{'status': 'Pulling from krtest/env', 'id': 'x'}, {'status': 'Already exists', 'id': 'd84f1a20bd33'},
              {'status': 'Pulling fs layer', 'id': 'fde21f0bb654'}, {'status': 'Downloading', 'id': 'fde21f0bb654'},
              {'status': 'Download complete', 'id': 'fde21f0bb654'}, {'status': 'Pull complete', 'id': 'fde21f0bb654'},
              {'status': 'Digest: ' + TOP}, 'not a dict']
    assert pull_counts(events, LAYERS) == (1, 1, 107)


def test_the_containerd_store_mentions_only_the_layers_it_downloads():
    events = [{'status': 'Pulling fs layer', 'id': 'fde21f0bb654'},
              {'status': 'Download complete', 'progressDetail': {'hidecounts': True}, 'id': 'fde21f0bb654'}]
    assert pull_counts(events, LAYERS) == (1, 1, 107)
    assert pull_counts([], LAYERS) == (0, 2, 0)


def test_an_error_message_ends_the_pull_as_one_line():
    with pytest.raises(ValueError) as raised:
        pull_counts(iter([{'status': 'Pulling fs layer', 'id': 'fde21f0bb654'},
                          {'errorDetail': {'message': 'unauthorized:\n  authentication required'}}]), LAYERS)
    assert str(raised.value) == 'unauthorized: authentication required'


def test_a_pulled_image_is_named_by_its_config_or_the_digest_pulled_or_the_platform_manifest():
    plain = Manifest('sha256:' + 'a' * 64, 'm', 'sha256:' + 'c' * 64, LAYERS, 900)
    assert manifest_ids(plain) == ('sha256:' + 'c' * 64, 'sha256:' + 'a' * 64, 'sha256:' + 'a' * 64)
    index = Manifest('sha256:' + 'i' * 64, 'idx', 'sha256:' + 'c' * 64, LAYERS, 400, platform_digest='sha256:' + 'p' * 64)
    assert manifest_ids(index)[1:] == ('sha256:' + 'i' * 64, 'sha256:' + 'p' * 64)


def test_pruned_entries_are_one_per_image_with_every_name_that_went():
    pruned = [dict(id='a', tags=['kohakuriver/env:1'])]
    merged = _merged(pruned, [dict(id='a', tags=['kohakuriver/env:1', 'r:1/ns/env@sha256:x']), dict(id='b', tags=['n'])])
    assert merged == [dict(id='a', tags=['kohakuriver/env:1', 'r:1/ns/env@sha256:x']), dict(id='b', tags=['n'])]


@pytest.mark.parametrize('message, again', [
    ('failed to copy: httpReadSeeker: failed open: unexpected status code https://127.0.0.1:5155/v2/x/blobs/sha256:0e: '
     '500 Internal Server Error - Server message: unknown: unknown error', True),
    ('received unexpected HTTP status: 503 Service Unavailable', True),
    ('received unexpected HTTP status: 502 Bad Gateway', True),
    ('unauthorized: authentication required', False),
    ('manifest unknown: 404 Not Found', False),
    ('toomanyrequests: 429 Too Many Requests', False),
    ('failed to do request: Head "https://r/v2/": tls: first record does not look like a TLS handshake', False),
])
def test_only_a_failure_on_the_registry_side_is_tried_again(message, again):
    assert bool(_SERVER_SIDE.search(message)) is again


def test_layers_an_earlier_attempt_downloaded_still_count():
    pulled = set()
    with pytest.raises(ValueError):
        pull_counts([{'status': 'Download complete', 'id': 'fde21f0bb654'}, {'error': '500 Internal Server Error'}],
                    LAYERS, pulled)
    assert pull_counts([{'status': 'Already exists', 'id': 'd84f1a20bd33'}], LAYERS, pulled) == (1, 1, 107)


class _Daemon(object):
    changing_client = 'standard library'
    client = 'Docker SDK'


@pytest.mark.parametrize('username, config, expected', [
    (None, None, 'standard library'),
    ('puller', None, 'standard library'),
    (None, '.docker/config.json', 'Docker SDK'),
    ('puller', '.docker/config.json', 'standard library'),
    (None, '.dockercfg', 'Docker SDK'),
    (None, 'docker-config/config.json', 'Docker SDK'),
])
def test_only_credentials_docker_login_may_have_stored_take_the_sdk(tmp_path, monkeypatch, username, config, expected):
    monkeypatch.setenv('HOME', str(tmp_path))
    monkeypatch.setenv('DOCKER_CONFIG', str(tmp_path / 'docker-config'))
    if config:
        (tmp_path / config).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / config).write_text('{}')
    settings = RegistrySettings.from_option(dict(url='127.0.0.1:5000', namespace='kr', username=username,
                                                 password='secret' if username else None))
    assert pull_client(_Daemon(), settings) == expected


def test_a_registry_sync_imports_neither_the_docker_sdk_nor_requests():
    """What keeps a pull's own cost down: a fresh interpreter that imports the registry sync's code has neither."""
    code = ('import sys\n'
            'from ansible_collections.kohakuriver.docker.plugins.module_utils import registry_sync, registry_pull\n'
            'print(sorted(name for name in ("docker", "requests", "urllib3") if name in sys.modules))\n')
    found = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True,
                           env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)))
    assert found.stdout.strip() == '[]', found.stdout + found.stderr
