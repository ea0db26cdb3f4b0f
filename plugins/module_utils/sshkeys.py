# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSH public keys as authorized_keys lines: strict validation before anything runs, fingerprints, and new keys.

A line is accepted only when it is one `[options] type base64 [comment]` line whose base64 blob decodes exactly and
carries the declared key type in its own first field, with a well-formed key of that type after it. Anything else
(a private key, two lines in one entry, quotes outside an option's value, control characters) is refused with a
message that says what to give instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct

try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
except ImportError:
    serialization = ec = Ed25519PrivateKey = None

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

MIN_RSA_BITS = 2048
MAX_LINE = 16384
_ECDSA_POINT_BYTES = {'nistp256': 65, 'nistp384': 97, 'nistp521': 133}
_ECDSA_CURVES = {'nistp256': 'SECP256R1', 'nistp384': 'SECP384R1', 'nistp521': 'SECP521R1'}
KEY_TYPES = (
    'ssh-ed25519', 'ssh-rsa', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521',
    'sk-ssh-ed25519@openssh.com', 'sk-ecdsa-sha2-nistp256@openssh.com',
)
FLAG_OPTIONS = frozenset((
    'agent-forwarding', 'cert-authority', 'no-agent-forwarding', 'no-port-forwarding', 'no-pty', 'no-user-rc',
    'no-x11-forwarding', 'port-forwarding', 'pty', 'no-touch-required', 'verify-required', 'restrict', 'user-rc',
    'x11-forwarding',
))
VALUE_OPTIONS = frozenset(('command', 'environment', 'expiry-time', 'from', 'permitlisten', 'permitopen', 'principals',
                           'tunnel'))
# A value is double-quoted; inside it, as in sshd, only \" escapes a quote and any other backslash is literal.
_OPTION = re.compile(r'([A-Za-z0-9-]+)(?:="((?:[^"\\]|\\"|\\(?!"))*)")?(,|(?=[ \t])|$)')
_BASE64 = re.compile(r'[A-Za-z0-9+/]+={0,2}')
_HINT = 'give one public key line, as in a .pub file: "ssh-ed25519 AAAA... comment"'


class PublicKey(object):
    """One validated authorized_keys line."""

    def __init__(self, options, key_type, blob, comment):
        self.options = options
        self.key_type = key_type
        self.blob = blob
        self.comment = comment

    @property
    def base64(self):
        return base64.b64encode(self.blob).decode('ascii')

    @property
    def fingerprint(self):
        """As `ssh-keygen -l` prints it: SHA256:<unpadded base64 of the blob's sha256>."""
        return 'SHA256:' + base64.b64encode(hashlib.sha256(self.blob).digest()).decode('ascii').rstrip('=')

    def line(self):
        fields = ([self.options] if self.options else []) + [self.key_type, self.base64]
        return ' '.join(fields + ([self.comment] if self.comment else []))

    def summary(self):
        return dict(type=self.key_type, fingerprint=self.fingerprint, comment=self.comment or '',
                    options=self.options or '')


def _refuse(index, why):
    return Failure('authorized_keys[%d] %s; %s.' % (index, why, _HINT))


def _check_characters(text, index):
    if '\n' in text or '\r' in text:
        raise _refuse(index, 'holds more than one line (a line break is not allowed inside one key)')
    for char in text:
        if char != '\t' and not char.isprintable():
            raise _refuse(index, 'contains the control character %r' % char)


def _split_options(text, index):
    """(options text or '', rest) for a line that does not start with a key type."""
    position = 0
    names = []
    while True:
        match = _OPTION.match(text, position)
        if not match:
            raise _refuse(index, 'starts with %r, which is neither a key type nor well-formed authorized_keys options'
                          % text.split()[0][:60])
        name, value = match.group(1).lower(), match.group(2)
        if name in FLAG_OPTIONS and value is None or name in VALUE_OPTIONS and value is not None:
            names.append(name)
        elif name in VALUE_OPTIONS:
            raise _refuse(index, 'has option %s without its ="value"' % name)
        elif name in FLAG_OPTIONS:
            raise _refuse(index, 'gives option %s a value it does not take' % name)
        else:
            raise _refuse(index, 'has the unknown option %r (see AUTHORIZED_KEYS FILE FORMAT in sshd(8))' % name)
        position = match.end()
        if match.group(3) != ',':
            break
        if position >= len(text) or text[position] in ' \t':
            raise _refuse(index, 'ends its options with a comma')
    return text[:position], text[position:]


def _read_string(blob, offset):
    if offset + 4 > len(blob):
        raise ValueError('truncated')
    length = struct.unpack('>I', blob[offset:offset + 4])[0]
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError('truncated')
    return blob[offset + 4:end], end


def _mpint(data):
    if not data or data[0] & 0x80 or (len(data) > 1 and data[0] == 0 and not data[1] & 0x80):
        raise ValueError('bad mpint')
    return int.from_bytes(data, 'big')


def _check_blob(key_type, blob):
    """Raise ValueError unless blob is a well-formed public key of key_type with nothing after it."""
    embedded, offset = _read_string(blob, 0)
    if embedded != key_type.encode('ascii'):
        raise ValueError('its base64 data is a %s key, not %s' % (embedded.decode('ascii', 'replace')[:40], key_type))
    if key_type in ('ssh-ed25519', 'sk-ssh-ed25519@openssh.com'):
        point, offset = _read_string(blob, offset)
        if len(point) != 32:
            raise ValueError('its ed25519 key is %d bytes, not 32' % len(point))
    elif key_type == 'ssh-rsa':
        exponent, offset = _read_string(blob, offset)
        modulus, offset = _read_string(blob, offset)
        exponent, modulus = _mpint(exponent), _mpint(modulus)
        if exponent < 3 or not exponent % 2 or not modulus % 2:
            raise ValueError('its RSA numbers are not a valid key')
        if modulus.bit_length() < MIN_RSA_BITS:
            raise ValueError('is a %d-bit RSA key; RSA keys need at least %d bits (or use ssh-keygen -t ed25519)'
                             % (modulus.bit_length(), MIN_RSA_BITS))
    else:
        curve, offset = _read_string(blob, offset)
        curve = curve.decode('ascii', 'replace')
        if not key_type.startswith('ecdsa-sha2-' + curve) and key_type != 'sk-ecdsa-sha2-%s@openssh.com' % curve:
            raise ValueError('its curve %s does not match %s' % (curve[:20], key_type))
        point, offset = _read_string(blob, offset)
        if len(point) != _ECDSA_POINT_BYTES[curve] or point[0] != 4:
            raise ValueError('its %s point is not an uncompressed point of that curve' % curve)
        if ec is not None:
            try:
                ec.EllipticCurvePublicKey.from_encoded_point(getattr(ec, _ECDSA_CURVES[curve])(), point)
            except ValueError:
                raise ValueError('its %s point is not on the curve' % curve)
    if key_type.startswith('sk-'):
        application, offset = _read_string(blob, offset)
        if not application:
            raise ValueError('its security key has no application')
    if offset != len(blob):
        raise ValueError('%d bytes follow the key' % (len(blob) - offset))


def parse_public_key(text, index=0):
    """A PublicKey for one authorized_keys line, or Failure saying what is wrong with it."""
    if not isinstance(text, str):
        raise _refuse(index, 'is not a string')
    if 'PRIVATE KEY' in text or 'PuTTY-User-Key-File' in text:
        raise Failure('authorized_keys[%d] is a private key: never hand it out; give its public key (the .pub file, or '
                      'ssh-keygen -y -f KEYFILE).' % index)
    if 'BEGIN SSH2 PUBLIC KEY' in text:
        raise Failure('authorized_keys[%d] is in RFC 4716 format: convert it with ssh-keygen -i -f FILE and give the '
                      'line it prints.' % index)
    text = text.strip()
    if not text:
        raise _refuse(index, 'is empty')
    if len(text) > MAX_LINE:
        raise _refuse(index, 'is longer than %d characters' % MAX_LINE)
    _check_characters(text, index)
    options = ''
    first = text.split(None, 1)[0]
    if first.split('=', 1)[0].split(',', 1)[0].lower() in FLAG_OPTIONS | VALUE_OPTIONS or '=' in first or ',' in first:
        options, text = _split_options(text, index)
        if not text.strip():
            raise _refuse(index, 'has options but no key')
    fields = text.split(None, 2)
    if len(fields) < 2:
        raise _refuse(index, 'has a key type but no key data')
    key_type, data = fields[0], fields[1]
    comment = ' '.join(fields[2].split()) if len(fields) > 2 else ''
    if key_type == 'ssh-dss':
        raise _refuse(index, 'is a DSA key, which current OpenSSH refuses; make an ed25519 key (ssh-keygen -t ed25519)')
    if key_type.endswith('-cert-v01@openssh.com'):
        raise _refuse(index, 'is a certificate; give the CA key with the cert-authority option instead')
    if key_type not in KEY_TYPES:
        raise _refuse(index, 'has the unknown key type %r (accepted: %s)' % (key_type[:40], ', '.join(KEY_TYPES)))
    if '"' in comment or "'" in comment or '`' in comment or '\\' in comment:
        raise _refuse(index, 'has quotes or backslashes after the key data')
    if not _BASE64.fullmatch(data) or len(data) % 4:
        raise _refuse(index, 'has key data that is not base64')
    try:
        blob = base64.b64decode(data, validate=True)
        _check_blob(key_type, blob)
    except (binascii.Error, ValueError, KeyError, UnicodeError) as exc:
        why = str(exc) if isinstance(exc, ValueError) and str(exc) not in ('truncated', 'bad mpint') else ''
        raise _refuse(index, why or 'has key data that is not a %s key' % key_type)
    return PublicKey(options, key_type, blob, comment)


def parse_authorized_keys(entries):
    """Validated PublicKeys of a list of lines (exact duplicates dropped, order kept); Failure on the first bad one."""
    if not entries:
        raise Failure('authorized_keys is empty: give at least one public key, or generate_key: true.')
    keys, seen = [], set()
    for index, entry in enumerate(entries):
        key = parse_public_key(entry, index)
        if key.line() not in seen:
            seen.add(key.line())
            keys.append(key)
    return keys


def authorized_keys_text(keys):
    """The authorized_keys file for keys: one line each, newline-terminated."""
    return ''.join(key.line() + '\n' for key in keys)


def generate_ed25519(comment=''):
    """(OpenSSH private key text, public key line) of a new ed25519 key; needs the Python library cryptography."""
    if Ed25519PrivateKey is None:
        raise Failure('Making SSH keys needs the Python library cryptography (installed with paramiko) on the node '
                      'that runs the module: pip install paramiko, or the python3-cryptography package.')
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                serialization.NoEncryption()).decode('ascii')
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return private, public.decode('ascii') + (' ' + comment if comment else '')
