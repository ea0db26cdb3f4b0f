"""Registry sync's decisions over real files and inspect dicts: where the sync takes the image from, which version is
wanted (the share's newest pushed sidecar, or the registry's tags), is :base that version, and does a manifest match
the sidecar."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from hypothesis import given, strategies as st

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import SIGNATURE_NAMESPACE
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_client import Manifest
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import RegistrySettings
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_sync import (
    RegistryUnavailable, SyncSource, Wanted, check_manifest, holds, wanted_version,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.sidecar import FORMAT
from ansible_collections.kohakuriver.docker.plugins.module_utils.signing import SigningPolicy

ENV = 'my-env'
CONFIG = 'sha256:' + 'c' * 64
DIGEST_1 = 'sha256:' + '1' * 64
DIGEST_2 = 'sha256:' + '2' * 64
SETTINGS = RegistrySettings({'url': 'cache.rack1:5001', 'namespace': 'team'})


def tarball(folder, timestamp, registry=None, image_id=CONFIG):
    """An (empty) tarball and its sidecar, recording a push when registry (repository, digest) is given."""
    path = os.path.join(str(folder), '%s-%d.tar' % (ENV, timestamp))
    open(path, 'wb').close()
    sidecar = dict(format=FORMAT, env=ENV, file=os.path.basename(path), timestamp=timestamp, image_id=image_id)
    if registry:
        sidecar['registry'] = dict(repository=registry[0], tag=str(timestamp), digest=registry[1])
    with open(path + '.json', 'w') as handle:
        json.dump(sidecar, handle)
    return path


@pytest.mark.parametrize('params, uses_registry', [
    ({}, False),
    ({'registry': {'url': '127.0.0.1:5000'}}, True),
    ({'registry': {'url': '127.0.0.1:5000'}, 'source': 'share'}, False),
    ({'registry': {'url': '127.0.0.1:5000'}, 'source': 'registry', 'fallback_to_share': True}, True),
])
def test_the_registry_is_used_when_given_unless_the_share_is_asked_for(params, uses_registry):
    assert SyncSource(params).uses_registry is uses_registry


def test_fallback_to_share_means_nothing_when_the_share_is_the_source_already():
    assert not SyncSource({'fallback_to_share': True}).fallback_to_share
    assert not SyncSource({'registry': {'url': '127.0.0.1:5000'}, 'source': 'share', 'fallback_to_share': True}).fallback_to_share
    assert SyncSource({'registry': {'url': '127.0.0.1:5000'}, 'fallback_to_share': True}).fallback_to_share


@pytest.mark.parametrize('params, says', [
    ({'source': 'registry'}, 'needs the registry option'),
    ({'source': 'nfs'}, 'is not one of auto, registry, share'),
])
def test_a_source_that_cannot_work_is_refused_on_one_line(params, says):
    with pytest.raises(Failure) as raised:
        SyncSource(params)
    assert says in raised.value.msg and '\n' not in raised.value.msg


@given(st.dictionaries(st.sampled_from(['registry', 'source', 'fallback_to_share']),
                       st.one_of(st.none(), st.booleans(), st.text(max_size=8), st.dictionaries(
                           st.sampled_from(['url', 'namespace', 'username', 'password', 'nonsense']),
                           st.one_of(st.none(), st.text(max_size=12)), max_size=3))))
def test_sync_source_gives_settings_or_a_one_line_failure(params):
    try:
        source = SyncSource(params)
    except Failure as failure:
        assert failure.msg and '\n' not in failure.msg
        return
    assert source.source in ('auto', 'registry', 'share')
    assert source.uses_registry == (source.registry is not None and source.source != 'share')


def test_without_a_share_the_latest_tag_or_the_pinned_timestamp_tag_is_wanted(tmp_path):
    wanted = wanted_version(ENV, str(tmp_path / 'absent'), SETTINGS)
    assert (wanted.repository, wanted.path, wanted.tag, wanted.digest) == ('cache.rack1:5001/team/my-env', 'team/my-env',
                                                                           'latest', None)
    pinned = wanted_version(ENV, str(tmp_path / 'absent'), SETTINGS, pin='%s-1700000000.tar' % ENV)
    assert (pinned.tag, pinned.timestamp) == ('1700000000', 1700000000)
    assert wanted_version(ENV, str(tmp_path), SETTINGS).tag == 'latest'  # a share without tarballs of env


def test_the_share_names_the_newest_pushed_digest_and_warns_of_newer_unpushed_tarballs(tmp_path):
    tarball(tmp_path, 100, ('registry.example:5000/team/my-env', DIGEST_1))
    tarball(tmp_path, 200, ('registry.example:5000/team/my-env', DIGEST_2))
    tarball(tmp_path, 300)
    wanted = wanted_version(ENV, str(tmp_path), SETTINGS)
    assert (wanted.digest, wanted.timestamp, wanted.tag) == (DIGEST_2, 200, None)
    assert wanted.repository == 'cache.rack1:5001/team/my-env', 'the runner pulls through its own url'
    assert wanted.expected_ids == (CONFIG, DIGEST_2)
    assert ['my-env-300.tar is newer but not in the registry; syncing my-env-200.tar, the newest pushed.'] == wanted.warnings
    assert wanted_version(ENV, str(tmp_path), SETTINGS, pin='100').digest == DIGEST_1


def test_a_share_without_a_pushed_version_or_a_pinned_unpushed_one_hands_over_to_the_share(tmp_path):
    tarball(tmp_path, 100)
    with pytest.raises(RegistryUnavailable) as raised:
        wanted_version(ENV, str(tmp_path), SETTINGS)
    assert 'records a registry push' in raised.value.msg
    tarball(tmp_path, 200, ('registry.example:5000/team/my-env', DIGEST_2))
    with pytest.raises(RegistryUnavailable):
        wanted_version(ENV, str(tmp_path), SETTINGS, pin='100')
    with pytest.raises(Failure) as raised:
        wanted_version(ENV, str(tmp_path), SETTINGS, pin='150')
    assert 'kept: my-env-200.tar, my-env-100.tar' in raised.value.msg


@pytest.mark.parametrize('repository, says', [
    ('no-path', 'is not <url>/<namespace>/<env>'),
    ('registry.example:5000/team/other-env', 'is not a repository of environment my-env'),
])
def test_a_sidecar_whose_registry_record_is_not_this_environments_is_a_failure(tmp_path, repository, says):
    tarball(tmp_path, 100, (repository, DIGEST_1))
    with pytest.raises(Failure) as raised:
        wanted_version(ENV, str(tmp_path), SETTINGS)
    assert says in raised.value.msg and '\n' not in raised.value.msg


def wanted(digest=DIGEST_1, sidecar=None):
    found = Wanted(SETTINGS, 'team/my-env', digest=digest)
    found.sidecar = sidecar
    return found


@pytest.mark.parametrize('image, sidecar, up_to_date', [
    (None, None, False),
    ({'Id': CONFIG, 'RepoDigests': ['cache.rack1:5001/team/my-env@' + DIGEST_1]}, None, True),
    ({'Id': CONFIG, 'RepoDigests': ['registry.example:5000/team/my-env@' + DIGEST_1]}, None, True),  # another url
    ({'Id': CONFIG, 'RepoDigests': ['cache.rack1:5001/team/my-env@' + DIGEST_2]}, None, False),
    ({'Id': CONFIG, 'RepoDigests': ['cache.rack1:5001/other/my-env@' + DIGEST_1]}, None, False),
    ({'Id': CONFIG, 'RepoDigests': ['cache.rack1:5001/xteam/my-env@' + DIGEST_1]}, None, False),
    ({'Id': CONFIG, 'RepoDigests': []}, None, False),
    ({'Id': CONFIG, 'RepoDigests': ['r:1/team/my-env@' + DIGEST_1]}, {'image_id': CONFIG}, True),
    ({'Id': DIGEST_1, 'RepoDigests': ['r:1/team/my-env@' + DIGEST_1]}, {'image_id': CONFIG}, True),  # containerd store
    ({'Id': DIGEST_2, 'RepoDigests': ['r:1/team/my-env@' + DIGEST_1]}, {'image_id': CONFIG}, False),
])
def test_base_is_the_wanted_version_when_pulled_by_its_digest_and_of_the_sidecars_image(image, sidecar, up_to_date):
    assert holds(image, wanted(sidecar=sidecar)) is up_to_date


def test_an_unresolved_tag_is_never_up_to_date():
    assert not holds({'Id': CONFIG, 'RepoDigests': ['r:1/team/my-env@' + DIGEST_1]}, wanted(digest=None))


def test_a_manifest_whose_config_is_not_the_sidecars_image_is_refused(tmp_path):
    path = tarball(tmp_path, 100, ('registry.example:5000/team/my-env', DIGEST_1))
    found = wanted_version(ENV, str(tmp_path), SETTINGS)
    check_manifest(Manifest(DIGEST_1, 'application/vnd.oci.image.manifest.v1+json', CONFIG, [], 500), found)
    with pytest.raises(Failure) as raised:
        check_manifest(Manifest(DIGEST_1, 'application/vnd.oci.image.manifest.v1+json', 'sha256:' + 'd' * 64, [], 500), found)
    assert 'nothing was pulled' in raised.value.msg and path + '.json' in raised.value.msg and '\n' not in raised.value.msg
    check_manifest(Manifest(DIGEST_1, 'x', 'sha256:' + 'd' * 64, [], 500), wanted())  # no sidecar: nothing to compare


def test_the_digest_a_signed_sidecar_names_is_used_only_with_its_signature(tmp_path):
    key = str(tmp_path / 'host')
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'host', '-f', key], check=True)
    signers = tmp_path / 'allowed_signers'
    signers.write_text('host namespaces="%s" %s' % (SIGNATURE_NAMESPACE, open(key + '.pub').read()))
    policy = SigningPolicy.of({'allowed_signers': str(signers), 'require_signature': True})
    share = tmp_path / 'share'
    share.mkdir()
    path = tarball(share, 100, ('registry.example:5000/team/my-env', DIGEST_1))
    subprocess.run(['ssh-keygen', '-q', '-Y', 'sign', '-n', SIGNATURE_NAMESPACE, '-f', key, path + '.json'], check=True)
    signed = wanted_version(ENV, str(share), SETTINGS, signing=policy)
    assert signed.digest == DIGEST_1 and signed.signed_by['principal'] == 'host'

    with open(path + '.json') as handle:
        edited = json.load(handle)
    edited['registry']['digest'] = DIGEST_2  # someone who can write the share points the runners at another image
    with open(path + '.json', 'w') as handle:
        json.dump(edited, handle)
    with pytest.raises(Failure) as raised:
        wanted_version(ENV, str(share), SETTINGS, signing=policy)
    assert path + '.json' in raised.value.msg and '\n' not in raised.value.msg
