"""SSH public keys for VPS sessions: real keys of every accepted type pass; anything else is refused with a message."""

from __future__ import annotations

import base64
import struct
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.sshkeys import (
    authorized_keys_text, generate_ed25519, parse_authorized_keys, parse_public_key,
)


def public_line(private_key):
    return private_key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH).decode()


def string(data):
    return struct.pack('>I', len(data)) + data


def blob_line(key_type, *fields):
    return '%s %s' % (key_type, base64.b64encode(string(key_type.encode()) + b''.join(string(f) for f in fields)).decode())


ED25519 = public_line(Ed25519PrivateKey.generate())
RSA = public_line(rsa.generate_private_key(public_exponent=65537, key_size=2048))
ECDSA = dict((curve.name, public_line(ec.generate_private_key(curve)))
             for curve in (ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()))


@pytest.mark.parametrize('line', [ED25519, RSA] + sorted(ECDSA.values()), ids=lambda line: line.split()[0])
def test_real_keys_of_each_type_pass_and_keep_their_text(line):
    key = parse_public_key(line + ' alice@laptop')
    assert key.line() == line + ' alice@laptop'
    assert key.key_type == line.split()[0] and key.comment == 'alice@laptop' and key.options == ''


def test_fingerprint_is_the_one_ssh_keygen_prints(tmp_path):
    path = tmp_path / 'key.pub'
    path.write_text(ED25519 + ' me\n')
    printed = subprocess.run(['ssh-keygen', '-l', '-f', str(path)], capture_output=True, text=True, check=True).stdout
    assert parse_public_key(ED25519).fingerprint == printed.split()[1]


def test_a_key_made_by_ssh_keygen_passes(tmp_path):
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'bob@desk', '-f', str(tmp_path / 'k')], check=True)
    text = (tmp_path / 'k.pub').read_text()
    assert text.endswith('\n')
    assert parse_public_key(text).line() == text.strip()


@pytest.mark.parametrize('options', [
    'no-pty',
    'restrict,pty',
    'from="10.0.0.0/8,192.168.1.*",no-agent-forwarding',
    'command="echo \\"hi there\\"; id",no-port-forwarding',
    'environment="LANG=C.UTF-8",expiry-time="20301231"',
    'NO-X11-FORWARDING',
])
def test_options_before_the_key_are_kept(options):
    key = parse_public_key('%s %s carol' % (options, ED25519))
    assert key.options == options and key.key_type == 'ssh-ed25519' and key.comment == 'carol'
    assert key.line() == '%s %s carol' % (options, ED25519)


def test_security_key_types_pass():
    ed25519_sk = blob_line('sk-ssh-ed25519@openssh.com', b'\x01' * 32, b'ssh:')
    assert parse_public_key(ed25519_sk).key_type == 'sk-ssh-ed25519@openssh.com'
    point = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    ecdsa_sk = blob_line('sk-ecdsa-sha2-nistp256@openssh.com', b'nistp256', point, b'ssh:')
    assert parse_public_key(ecdsa_sk).key_type == 'sk-ecdsa-sha2-nistp256@openssh.com'


def test_whitespace_is_normalised_and_a_trailing_newline_dropped():
    key_type, data = ED25519.split()
    assert parse_public_key('  %s\t%s   two  words \n' % (key_type, data)).line() == '%s %s two words' % (key_type, data)


def rsa_1024():
    return public_line(rsa.generate_private_key(public_exponent=65537, key_size=1024))


ED_TYPE, ED_DATA = ED25519.split()
PRIVATE = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                     serialization.NoEncryption()).decode()


@pytest.mark.parametrize('entry, says', [
    ('', 'is empty'),
    ('   \n', 'is empty'),
    ('hello world', 'unknown key type'),
    ('ssh-ed25519', 'no key data'),
    ('ssh-ed25519 not-base64!', 'not base64'),
    ('ssh-ed25519 QUJD', 'not a ssh-ed25519 key'),
    # The blob's own type must be the declared one: an RSA blob labelled ed25519.
    ('ssh-ed25519 ' + RSA.split()[1], 'is a ssh-rsa key, not ssh-ed25519'),
    ('ecdsa-sha2-nistp256 ' + ECDSA['secp384r1'].split()[1], 'not ecdsa-sha2-nistp256'),
    # Base64 of a valid blob with extra bytes after the key.
    ('ssh-ed25519 ' + base64.b64encode(base64.b64decode(ED_DATA) + b'\0\0\0\0').decode(), 'follow the key'),
    (blob_line('ssh-ed25519', b'\x01' * 31), '31 bytes'),
    (blob_line('ecdsa-sha2-nistp256', b'nistp256', b'\x04' + b'\x01' * 64), 'not on the curve'),
    # Multi-line injection: a second key (or an option line) smuggled into one entry.
    (ED25519 + '\n' + RSA, 'more than one line'),
    (ED25519 + ' x\ncommand="sh" ' + RSA, 'more than one line'),
    (ED25519 + '\r' + RSA, 'more than one line'),
    (ED25519 + ' a\x00b', 'control character'),
    (ED25519 + " it's mine", 'quotes'),
    (ED25519 + " x'; touch /pwned; echo '", 'quotes'),
    (ED25519 + ' x" y', 'quotes'),
    (ED25519 + ' `id`', 'quotes'),
    ("ssh-ed25519 '%s'" % ED_DATA, 'not base64'),
    ("'%s'" % ED25519, 'unknown key type'),
    ('ssh-ed25519 %s\' && rm -rf / #' % ED_DATA, 'not base64'),
    ('command="unterminated %s' % ED25519, 'neither a key type nor well-formed'),
    ('command="a\\" ' + ED25519, 'neither a key type nor well-formed'),
    ('no-pty, ' + ED25519, 'comma'),
    ('evil-option ' + ED25519, 'unknown key type'),
    ('evil="x" ' + ED25519, 'unknown option'),
    ('command ' + ED25519, 'without its ="value"'),
    ('no-pty="x" ' + ED25519, 'a value it does not take'),
    ('no-pty', 'options but no key'),
    (PRIVATE, 'private key'),
    ('-----BEGIN RSA PRIVATE KEY-----\nMIIE...\n-----END RSA PRIVATE KEY-----', 'private key'),
    ('PuTTY-User-Key-File-3: ssh-ed25519', 'private key'),
    ('---- BEGIN SSH2 PUBLIC KEY ----\nAAAA\n---- END SSH2 PUBLIC KEY ----', 'RFC 4716'),
    ('ssh-dss AAAAB3NzaC1kc3MAAACB', 'DSA'),
    ('ssh-ed25519-cert-v01@openssh.com AAAA', 'certificate'),
], ids=lambda value: 'entry' if 'AAAA' in str(value) else None)
def test_bad_entries_are_refused_with_a_reason(entry, says):
    with pytest.raises(Failure) as raised:
        parse_authorized_keys([ED25519, entry])
    assert raised.value.msg.startswith('authorized_keys[1] ')
    assert says in raised.value.msg, raised.value.msg
    assert '\n' not in raised.value.msg
    assert 'MIIE' not in raised.value.msg and PRIVATE.splitlines()[1] not in raised.value.msg


def test_short_rsa_keys_are_refused():
    with pytest.raises(Failure) as raised:
        parse_public_key(rsa_1024())
    assert '1024-bit RSA key' in raised.value.msg and '2048' in raised.value.msg


def test_non_strings_and_an_empty_list_are_refused():
    with pytest.raises(Failure):
        parse_public_key(42)
    with pytest.raises(Failure) as raised:
        parse_authorized_keys([])
    assert 'generate_key' in raised.value.msg


def test_the_file_holds_one_line_per_distinct_key_in_order():
    keys = parse_authorized_keys([RSA + ' b', ED25519 + ' a', RSA + ' b', ' %s  b ' % RSA])
    assert authorized_keys_text(keys) == '%s b\n%s a\n' % (RSA, ED25519)


def test_generated_keys_are_a_pair_that_ssh_keygen_reads(tmp_path):
    private, public = generate_ed25519('kohakuriver-vps-s1')
    assert private.startswith('-----BEGIN OPENSSH PRIVATE KEY-----')
    assert parse_public_key(public).comment == 'kohakuriver-vps-s1'
    path = tmp_path / 'id'
    path.write_text(private)
    path.chmod(0o600)
    derived = subprocess.run(['ssh-keygen', '-y', '-f', str(path)], capture_output=True, text=True, check=True).stdout
    assert derived.split()[:2] == public.split()[:2]
    assert generate_ed25519()[1] != public


def test_a_key_line_with_a_trailing_newline_is_one_line_and_passes_but_two_lines_do_not():
    line = public_line(Ed25519PrivateKey.generate())
    assert parse_public_key(line + '\n').line() == line
    with pytest.raises(Failure, match='more than one line'):
        parse_public_key(line + '\n' + line)
