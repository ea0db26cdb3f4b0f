"""Signed sidecars with the real ssh-keygen and keys made for each test: what is accepted, and every refusal."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import signing, store
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import SIGNATURE_NAMESPACE
from ansible_collections.kohakuriver.docker.plugins.module_utils.sidecar import FORMAT

TARBALL = 'env-1700000000.tar'


def make_key(folder, name, passphrase=''):
    path = str(folder / name)
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', passphrase, '-C', name, '-f', path], check=True)
    return path


def fingerprint(key_path):
    out = subprocess.run(['ssh-keygen', '-l', '-f', key_path + '.pub'], check=True, stdout=subprocess.PIPE).stdout.decode()
    return 'ED25519 ' + out.split()[1]


def allowed_signers(folder, *entries):
    """An allowed-signers file of (principal, key path) entries."""
    path = folder / 'allowed_signers'
    path.write_text(''.join('%s namespaces="%s" %s' % (principal, SIGNATURE_NAMESPACE, open(key + '.pub').read())
                            for principal, key in entries))
    return str(path)


@pytest.fixture
def keys(tmp_path):
    folder = tmp_path / 'keys'
    folder.mkdir()
    return dict(host=make_key(folder, 'host'), new=make_key(folder, 'new'), other=make_key(folder, 'other'), folder=folder)


@pytest.fixture
def share(tmp_path):
    folder = tmp_path / 'share'
    folder.mkdir()
    return folder


def publish(share, key, data=None, name=TARBALL):
    """A tarball and its sidecar in share, signed with key (None: unsigned), published as packaging does."""
    data = data or {'format': FORMAT, 'file': name, 'env': 'env', 'timestamp': 1700000000}
    temp = share / ('.tmp-' + name)
    temp.write_bytes(b'tar')
    store.publish(str(temp), str(share / name), data, 0o644,
                  sign=(lambda raw: signing.Signer(key).sign(raw, 'sidecar')) if key else None)
    return str(share / name)


def test_a_signature_by_the_host_key_is_checked_and_names_principal_and_key(keys, share):
    tarball = publish(share, keys['host'])
    policy = signing.SigningPolicy(allowed_signers(keys['folder'], ('kohakuriver-host', keys['host'])), True)
    sidecar, signed_by = signing.verified_sidecar(tarball, policy)
    assert sidecar.file == TARBALL
    assert signed_by == dict(principal='kohakuriver-host', key=fingerprint(keys['host']), signature=tarball + '.json.sig')
    assert signing.Signer(keys['host']).signed_by['key'] == fingerprint(keys['host'])
    # A client we did not write accepts the signature over the file's bytes.
    with open(tarball + '.json', 'rb') as sidecar_file:
        subprocess.run(['ssh-keygen', '-Y', 'verify', '-f', policy.allowed_signers, '-I', 'kohakuriver-host', '-n',
                        SIGNATURE_NAMESPACE, '-s', tarball + '.json.sig'], stdin=sidecar_file, check=True,
                       stdout=subprocess.DEVNULL)


def test_rotation_accepts_both_keys_while_both_are_listed_then_only_the_new(keys, share):
    old, new = publish(share, keys['host']), publish(share, keys['new'], name='env-1700000001.tar')
    both = signing.SigningPolicy(allowed_signers(keys['folder'], ('host-2023', keys['host']), ('host-2024', keys['new'])))
    assert signing.verified_sidecar(old, both)[1]['principal'] == 'host-2023'
    assert signing.verified_sidecar(new, both)[1]['principal'] == 'host-2024'
    after = signing.SigningPolicy(allowed_signers(keys['folder'], ('host-2024', keys['new'])))
    assert signing.verified_sidecar(new, after)[1]['principal'] == 'host-2024'
    with pytest.raises(Failure, match='which .*allowed_signers does not list') as refused:
        signing.verified_sidecar(old, after)
    assert fingerprint(keys['host']) in refused.value.msg


def refusal(tarball, policy):
    with pytest.raises(Failure) as raised:
        signing.verified_sidecar(tarball, policy)
    assert '\n' not in raised.value.msg
    return raised.value.msg


def test_a_signature_by_an_unknown_key_names_the_file_and_the_key(keys, share):
    tarball = publish(share, keys['other'])
    msg = refusal(tarball, signing.SigningPolicy(allowed_signers(keys['folder'], ('h', keys['host']))))
    assert tarball + '.json.sig' in msg and fingerprint(keys['other']) in msg and 'does not list' in msg


def test_a_sidecar_edited_after_signing_is_refused(keys, share):
    tarball = publish(share, keys['host'])
    edited = json.loads(open(tarball + '.json').read())
    edited['sha256'] = 'ab' * 32
    open(tarball + '.json', 'w').write(json.dumps(edited))
    msg = refusal(tarball, signing.SigningPolicy(allowed_signers(keys['folder'], ('h', keys['host']))))
    assert 'does not match the sidecar %s.json' % tarball in msg and fingerprint(keys['host']) in msg


def test_a_signature_over_another_sidecar_is_refused(keys, share):
    tarball = publish(share, keys['host'])
    other = publish(share, keys['host'], name='env-1700000002.tar')
    os.replace(other + '.json.sig', tarball + '.json.sig')
    assert 'does not match' in refusal(tarball, signing.SigningPolicy(allowed_signers(keys['folder'], ('h', keys['host']))))


def test_a_signed_sidecar_copied_under_a_newer_name_is_refused(keys, share):
    tarball = publish(share, keys['host'])
    newer = str(share / 'env-1700000009.tar')
    for suffix in ('', '.json', '.json.sig'):
        os.link(tarball + suffix, newer + suffix)
    msg = refusal(newer, signing.SigningPolicy(allowed_signers(keys['folder'], ('h', keys['host']))))
    assert 'describes %s, not env-1700000009.tar' % TARBALL in msg


@pytest.mark.parametrize('content', [b'garbage', b'-----BEGIN SSH SIGNATURE-----\nAAAA!!\n-----END SSH SIGNATURE-----\n',
                                     b'-----BEGIN SSH SIGNATURE-----\nU1NIU0lHAAAAAQ==\n-----END SSH SIGNATURE-----\n'])
def test_a_corrupt_signature_file_is_refused(keys, share, content):
    tarball = publish(share, keys['host'])
    open(tarball + '.json.sig', 'wb').write(content)
    msg = refusal(tarball, signing.SigningPolicy(allowed_signers(keys['folder'], ('h', keys['host']))))
    assert msg.startswith('The signature %s.json.sig is corrupt' % tarball)


def test_a_signature_for_another_namespace_is_refused(keys, share):
    tarball = publish(share, keys['host'])
    with open(tarball + '.json', 'rb') as data:
        signature = subprocess.run(['ssh-keygen', '-Y', 'sign', '-q', '-f', keys['host'], '-n', 'file'], stdin=data,
                                   stdout=subprocess.PIPE, check=True).stdout
    open(tarball + '.json.sig', 'wb').write(signature)
    assert "namespace 'file'" in refusal(tarball, signing.SigningPolicy(allowed_signers(keys['folder'], ('h', keys['host']))))


def test_unsigned_is_refused_only_under_require_signature(keys, share):
    tarball = publish(share, None)
    allowed = allowed_signers(keys['folder'], ('h', keys['host']))
    assert signing.verified_sidecar(tarball, signing.SigningPolicy(allowed))[1] is None
    assert 'has no signature %s.json.sig, and require_signature is on' % tarball in \
        refusal(tarball, signing.SigningPolicy(allowed, True))
    os.unlink(tarball + '.json')
    assert signing.verified_sidecar(tarball, signing.SigningPolicy(allowed)) == (None, None)
    assert 'has no sidecar' in refusal(tarball, signing.SigningPolicy(allowed, True))


def test_a_revoked_key_is_refused_from_a_key_list_and_from_a_krl(keys, share):
    tarball = publish(share, keys['host'])
    allowed = allowed_signers(keys['folder'], ('h', keys['host']))
    listed = keys['folder'] / 'revoked.pub'
    listed.write_text('# revoked\n' + open(keys['other'] + '.pub').read())
    assert signing.verified_sidecar(tarball, signing.SigningPolicy(allowed, True, str(listed)))[1]['principal'] == 'h'
    listed.write_text(open(keys['host'] + '.pub').read())
    msg = refusal(tarball, signing.SigningPolicy(allowed, True, str(listed)))
    assert 'which %s revokes' % listed in msg and fingerprint(keys['host']) in msg
    krl = str(keys['folder'] / 'revoked.krl')
    subprocess.run(['ssh-keygen', '-q', '-k', '-f', krl, keys['other'] + '.pub'], check=True)
    assert signing.verified_sidecar(tarball, signing.SigningPolicy(allowed, True, krl))[1]['principal'] == 'h'
    subprocess.run(['ssh-keygen', '-q', '-k', '-u', '-f', krl, keys['host'] + '.pub'], check=True)
    assert 'which %s revokes' % krl in refusal(tarball, signing.SigningPolicy(allowed, True, krl))


def test_policy_options_are_checked_before_anything_is_read(tmp_path):
    assert signing.SigningPolicy.of(dict(allowed_signers=None, require_signature=False, revoked_keys=None)) is None
    with pytest.raises(Failure, match='^require_signature needs allowed_signers'):
        signing.SigningPolicy.of(dict(allowed_signers=None, require_signature=True))
    with pytest.raises(Failure, match='^revoked_keys needs allowed_signers'):
        signing.SigningPolicy.of(dict(revoked_keys='/x'))
    with pytest.raises(Failure, match='allowed_signers %s/none does not exist on this runner' % tmp_path):
        signing.SigningPolicy.of(dict(allowed_signers=str(tmp_path / 'none')))
    with pytest.raises(Failure, match='is not an absolute path'):
        signing.SigningPolicy.of(dict(allowed_signers='relative'))


def test_a_key_that_cannot_sign_is_refused_before_packaging(keys, tmp_path):
    with pytest.raises(Failure, match='does not exist on the Host'):
        signing.Signer(str(tmp_path / 'none'))
    locked = make_key(keys['folder'], 'locked', passphrase='secret passphrase')
    with pytest.raises(Failure, match='cannot be used .*without passphrase') as refused:
        signing.Signer(locked)
    assert 'secret' not in refused.value.msg
    os.chmod(keys['host'], 0o644)
    with pytest.raises(Failure, match='cannot be used'):
        signing.Signer(keys['host'])


def test_a_node_without_ssh_keygen_is_told_to_install_it(keys, monkeypatch):
    monkeypatch.setattr(signing.shutil, 'which', lambda name: None)
    monkeypatch.setattr(signing.os, 'access', lambda path, mode: False)
    with pytest.raises(Failure, match='^ssh-keygen is not installed on this node.*OpenSSH 8.2 or later'):
        signing.Signer(keys['host'])


def test_publish_signs_the_bytes_it_writes_and_removal_and_cleanup_take_the_signature(keys, share):
    tarball = publish(share, keys['host'])
    assert open(tarball + '.json.sig', 'rb').read().startswith(b'-----BEGIN SSH SIGNATURE-----')
    assert oct(os.stat(tarball + '.json.sig').st_mode & 0o777) == '0o644'
    assert signing.signer_of(tarball + '.json.sig') == dict(principal=None, key=fingerprint(keys['host']))
    found = store.list_tarballs(str(share), 'env')[0]
    assert store.remove_tarball(found) == [tarball, tarball + '.json', tarball + '.json.sig']
    orphan = share / 'env-1700000005.tar.json.sig'
    orphan.write_bytes(b'sig')
    assert store.clean_stale(str(share), 'env', before=0) == [str(orphan)]
