# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed sidecars: OpenSSH signatures (`ssh-keygen -Y sign` / `-Y verify`, PROTOCOL.sshsig) in our own namespace.

The Host signs the exact bytes of a sidecar with its key (Signer); the signature '<tarball>.json.sig' is published
with the sidecar. A runner reads the sidecar's bytes once, checks the signature over those bytes against its
allowed-signers file (SigningPolicy: `ssh-keygen -Y find-principals`, then `-Y verify` with the principal found and,
when given, a revocation list), and only then parses them. The cryptography is OpenSSH's; this file runs ssh-keygen,
reads the public key out of a signature to name it in messages, and never reads a private key.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import shutil
import stat
import struct
import subprocess
import tempfile

from ansible_collections.kohakuriver.docker.plugins.module_utils import sidecar as sidecar_format
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import SIGNATURE_NAMESPACE

MAX_SIGNATURE_SIZE = 64 * 1024
TIMEOUT = 60
_ARMOR_BEGIN = b'-----BEGIN SSH SIGNATURE-----'
_ARMOR_END = b'-----END SSH SIGNATURE-----'
_KRL_MAGIC = b'SSHKRL\n\0'
_OPENSSH = 'OpenSSH 8.2 or later (package openssh-client)'


def ssh_keygen():
    """The path of ssh-keygen; a missing one is a Failure."""
    usual = [path for path in ('/usr/bin/ssh-keygen', '/usr/local/bin/ssh-keygen') if os.access(path, os.X_OK)]
    found = shutil.which('ssh-keygen') or (usual[0] if usual else None)
    if found is None:
        raise Failure('ssh-keygen is not installed on this node, and signatures are made and checked with it: install '
                      '%s.' % _OPENSSH)
    return found


def _run(argv, data=b''):
    """(exit code, stdout, the first line of stderr) of ssh-keygen argv, data on its stdin."""
    # subprocess, not AnsibleModule.run_command: only module_base.py imports Ansible (CONTRIBUTING.md, Layers).
    try:
        done = subprocess.run(  # pylint: disable=ansible-bad-function
            [ssh_keygen()] + argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT,
            check=False, close_fds=True)
    except subprocess.TimeoutExpired:
        raise Failure('ssh-keygen %s did not answer within %d s.' % (argv[0], TIMEOUT))
    except OSError as exc:
        raise Failure('Cannot run ssh-keygen: %s; install %s.' % (exc.strerror, _OPENSSH))
    lines = [line for line in done.stderr.decode('utf-8', 'replace').splitlines() if line.strip()]
    return done.returncode, done.stdout, lines[0].strip() if lines else ''


def _too_old(error):
    return 'usage' in error.lower() or 'unknown option' in error.lower() or 'illegal option' in error.lower()


class KeyName(object):
    """A public key as messages name it ('ED25519 SHA256:...', like ssh-keygen -l) and as a public key line."""

    def __init__(self, key_type, blob):
        self.key_type = key_type
        self.blob = blob
        digest = base64.b64encode(hashlib.sha256(blob).digest()).decode('ascii').rstrip('=')
        shown = key_type.replace('ssh-', '').split('@')[0].upper()
        self.text = '%s SHA256:%s' % (shown, digest)

    @property
    def line(self):
        return '%s %s' % (self.key_type, base64.b64encode(self.blob).decode('ascii'))

    def __str__(self):
        return self.text


def _read_string(blob, offset):
    if offset + 4 > len(blob):
        raise ValueError('truncated')
    length = struct.unpack('>I', blob[offset:offset + 4])[0]
    end = offset + 4 + length
    if end > len(blob):
        raise ValueError('truncated')
    return blob[offset + 4:end], end


def _key_name(blob):
    key_type, _end = _read_string(blob, 0)
    return KeyName(key_type.decode('ascii'), blob)


def key_of_line(line):
    """The KeyName of a public key line 'type base64 [comment]' (options before it are skipped); None if none."""
    for index, field in enumerate(line.split()[:-1]):
        try:
            blob = base64.b64decode(line.split()[index + 1], validate=True)
            name = _key_name(blob)
        except (ValueError, binascii.Error, UnicodeDecodeError):
            continue
        if name.key_type == field:
            return name
    return None


class Signature(object):
    """An armored SSH signature, read: the signer's key (KeyName) and the namespace it was made for."""

    def __init__(self, armored, where):
        self.armored = armored
        try:
            lines = armored.strip().splitlines()
            if not lines or lines[0].strip() != _ARMOR_BEGIN or lines[-1].strip() != _ARMOR_END:
                raise ValueError('no SSH SIGNATURE armor')
            blob = base64.b64decode(b''.join(line.strip() for line in lines[1:-1]), validate=True)
            if blob[:6] != b'SSHSIG':
                raise ValueError('no SSHSIG magic')
            public_key, end = _read_string(blob, 10)
            namespace, _end = _read_string(blob, end)
            self.key = _key_name(public_key)
            self.namespace = namespace.decode('utf-8')
        except (ValueError, binascii.Error, UnicodeDecodeError, struct.error) as exc:
            raise Failure('The signature %s is corrupt (%s), not an SSH signature; package the environment again on '
                          'the Host, or remove the tarball.' % (where, exc))


def read_signature(path):
    """The bytes of the signature file path (a small regular file), None when there is none."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, 'O_NOFOLLOW', 0) | getattr(os, 'O_NONBLOCK', 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Failure('Cannot read the signature %s: %s; fix its permissions, or package again.' % (path, exc.strerror))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Failure('The signature %s is not a regular file; remove it and package again.' % path)
        raw = os.read(fd, MAX_SIGNATURE_SIZE + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_SIGNATURE_SIZE:
        raise Failure('The signature %s is larger than %d bytes, so it is corrupt; package again.' % (path, MAX_SIGNATURE_SIZE))
    return raw


class Signer(object):
    """The Host's signing key (an OpenSSH private key without passphrase, mode 0600): signs sidecar bytes."""

    def __init__(self, key_path):
        if not isinstance(key_path, str) or not os.path.isabs(key_path):
            raise Failure('signing_key %r is not an absolute path: give the path of the private key on the Host.' % (key_path,))
        if not os.path.isfile(key_path):
            raise Failure('signing_key %s does not exist on the Host: make it with ssh-keygen -t ed25519 -N "" -f %s '
                          '(the host role does that), or unset signing_key.' % (key_path, key_path))
        self.path = key_path
        code, public, error = _run(['-y', '-P', '', '-f', key_path])
        self.key = key_of_line(public.decode('utf-8', 'replace')) if code == 0 else None
        if self.key is None:
            raise Failure('signing_key %s cannot be used (%s): give an OpenSSH private key without passphrase, readable '
                          'only by its owner (mode 0600).' % (key_path, error or 'ssh-keygen -y printed no key'))

    def sign(self, data, where):
        """The armored signature of data (bytes: the sidecar written as where)."""
        code, signature, error = _run(['-Y', 'sign', '-q', '-f', self.path, '-n', SIGNATURE_NAMESPACE], data)
        if code != 0 or not signature.startswith(_ARMOR_BEGIN):
            raise Failure('Signing %s with %s (%s) failed: %s; nothing was published. %s is needed.'
                          % (where, self.path, self.key, error or 'no signature', _OPENSSH))
        return signature

    @property
    def signed_by(self):
        return dict(principal=None, key=str(self.key))


def signer_of(signature_path):
    """signed_by (principal None, key) as the signature file says, without checking it; None when there is none."""
    armored = read_signature(signature_path)
    return None if armored is None else dict(principal=None, key=str(Signature(armored, signature_path).key))


class SigningPolicy(object):
    """What a runner asks of a sidecar's signature: allowed_signers (path), require_signature, revoked_keys (path)."""

    def __init__(self, allowed_signers, require_signature=False, revoked_keys=None):
        self.allowed_signers = _runner_file(allowed_signers, 'allowed_signers')
        self.required = bool(require_signature)
        self.revoked_keys = _runner_file(revoked_keys, 'revoked_keys') if revoked_keys else None

    @classmethod
    def of(cls, params):
        """The policy of a module's allowed_signers, require_signature and revoked_keys; None when signatures are not checked."""
        allowed, required, revoked = (params.get(key) for key in ('allowed_signers', 'require_signature', 'revoked_keys'))
        if not allowed:
            if required or revoked:
                option = 'require_signature' if required else 'revoked_keys'
                raise Failure('%s needs allowed_signers: the path on this runner of the allowed-signers file that '
                              "lists the Host's public key (the runner role installs it)." % option)
            return None
        return cls(allowed, required, revoked)

    def check(self, raw, sidecar_where):
        """signed_by (principal, key, signature) of the signature over raw (the sidecar's bytes); None when the
        sidecar has no signature and none is required. Any other outcome is a Failure naming the file and the key."""
        where = sidecar_where + sidecar_format.SIGNATURE_SUFFIX
        armored = read_signature(where)
        if armored is None:
            if self.required:
                raise Failure('The sidecar %s has no signature %s, and require_signature is on: package the environment '
                              'again on the Host with its signing_key.' % (sidecar_where, where))
            return None
        signature = Signature(armored, where)
        if signature.namespace != SIGNATURE_NAMESPACE:
            raise Failure('The signature %s (key %s) was made for namespace %r, not %r: it is not a signature of a '
                          'sidecar; package again.' % (where, signature.key, signature.namespace, SIGNATURE_NAMESPACE))
        if self.revoked_keys and self._revoked(signature.key):
            raise Failure('The signature %s is by key %s, which %s revokes; package again on the Host with its current '
                          'key.' % (where, signature.key, self.revoked_keys))
        with _private_copy(armored) as copy:
            code, found, error = _run(['-Y', 'find-principals', '-f', self.allowed_signers, '-s', copy])
            principals = found.decode('utf-8', 'replace').split()
            if code != 0 or not principals:
                raise self._unknown(where, signature.key, error)
            argv = ['-Y', 'verify', '-f', self.allowed_signers, '-I', principals[0], '-n', SIGNATURE_NAMESPACE, '-s', copy]
            code, _out, error = _run(argv + (['-r', self.revoked_keys] if self.revoked_keys else []), raw)
        if code != 0:
            raise Failure('The signature %s (key %s, %s) does not match the sidecar %s (%s): the sidecar was edited '
                          'after signing, or the signature is of another sidecar; package again on the Host.'
                          % (where, signature.key, principals[0], sidecar_where, error or 'verification failed'))
        return dict(principal=principals[0], key=str(signature.key), signature=where)

    def _unknown(self, where, key, error):
        if _too_old(error):
            return Failure('ssh-keygen cannot find the signer of %s (%s): install %s.' % (where, error, _OPENSSH))
        return Failure('The signature %s is by key %s, which %s does not list (%s): the sidecar was not signed by the '
                       'Host, or its key changed; add the key to allowed_signers or package again.'
                       % (where, key, self.allowed_signers, error or 'no principal'))

    def _revoked(self, key):
        """Is key in revoked_keys (a KRL, checked by ssh-keygen -Q, or a list of public key lines)?"""
        with open(self.revoked_keys, 'rb') as handle:
            content = handle.read(sidecar_format.MAX_SIZE)
        if content.startswith(_KRL_MAGIC):
            with _private_copy(key.line.encode('ascii') + b'\n') as public:
                code, _out, error = _run(['-Q', '-f', self.revoked_keys, public])
            if code not in (0, 1):
                raise Failure('revoked_keys %s cannot be read as a KRL (%s): fix it or give a list of public keys.'
                              % (self.revoked_keys, error))
            return code == 1
        listed = (key_of_line(line) for line in content.decode('utf-8', 'replace').splitlines()
                  if line.strip() and not line.lstrip().startswith('#'))
        return any(found is not None and found.blob == key.blob for found in listed)


def _runner_file(path, option):
    if not isinstance(path, str) or not os.path.isabs(path):
        raise Failure('%s %r is not an absolute path: give the path of the file on this runner.' % (option, path))
    if not os.path.isfile(path):
        raise Failure('%s %s does not exist on this runner: install it (the runner role does), or unset %s.'
                      % (option, path, option))
    return path


@contextlib.contextmanager
def _private_copy(data):
    """The path of a temporary file (mode 0600) holding data, for ssh-keygen to read; removed afterwards."""
    fd, path = tempfile.mkstemp(prefix='kohakuriver-sig-')
    try:
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        yield path
    finally:
        os.unlink(path)


def verified_sidecar(tarball_path, policy):
    """(Sidecar or None, signed_by or None) of tarball_path: the sidecar's bytes read once, their signature checked by
    policy (a SigningPolicy) before they are parsed. A tarball without sidecar under require_signature is a Failure."""
    where = sidecar_format.path_of(tarball_path)
    raw = sidecar_format.read_raw(tarball_path)
    if raw is None:
        if policy.required:
            raise Failure('The tarball %s has no sidecar %s, so no signature, and require_signature is on: package the '
                          'environment on the Host with its signing_key.' % (tarball_path, where))
        return None, None
    signed_by = policy.check(raw, where)
    sidecar = sidecar_format.parse(raw, where)
    if signed_by is not None and sidecar.file != os.path.basename(tarball_path):
        raise Failure('The signed sidecar %s (key %s) describes %s, not %s: a signed sidecar was copied under another '
                      'name; remove the tarball.' % (where, signed_by['key'], sidecar.file, os.path.basename(tarball_path)))
    return sidecar, signed_by
