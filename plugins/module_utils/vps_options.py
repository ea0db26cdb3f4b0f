# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a user asks of a VPS session, how its container reports it, and where the two differ.

Pure logic: no daemon calls. Everything here is checked before Docker is called.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import iso_time, state_of
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    DEFAULT_STOP_TIMEOUT, LABEL_ENV, LABEL_MANAGED, LABEL_VPS, LABEL_VPS_BIND, LABEL_VPS_HOST_KEY, LABEL_VPS_PORT,
    SNAPSHOT_TAG_PREFIX, validate_env_name, vps_container_name,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import SHARED_MOUNT, RunOptions, gpus_of, run_view_of
from ansible_collections.kohakuriver.docker.plugins.module_utils.sshkeys import parse_authorized_keys, parse_public_key

SSH_PORT = '22/tcp'
SSHD = '/usr/sbin/sshd'
HOST_KEY_PATH = '/etc/kohakuriver/vps/ssh_host_ed25519_key'
AUTHORIZED_KEYS_PATH = '/root/.ssh/authorized_keys'
PRIVSEP_DIR = '/run/sshd'
DEFAULT_BIND_ADDRESS = '0.0.0.0'
RESTART_POLICY = 'unless-stopped'
DEFAULT_SNAPSHOT_KEEP = 3
# Ports the module picks from when none is given: Linux's default ephemeral range, which Docker uses too.
PICK_RANGE = (32768, 60999)
_SESSION = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,62}')
_HOST_NAME = re.compile(r'[A-Za-z0-9_.:%-]{1,253}')
SSHD_SETTINGS = (
    'PermitRootLogin=prohibit-password', 'PasswordAuthentication=no', 'KbdInteractiveAuthentication=no',
    'ChallengeResponseAuthentication=no', 'PermitEmptyPasswords=no', 'PubkeyAuthentication=yes',
    'AuthorizedKeysFile=.ssh/authorized_keys', 'HostKey=' + HOST_KEY_PATH,
)


def sshd_argv():
    """sshd in the foreground, logging to stderr, with the login rules on its command line (no config file edited)."""
    argv = [SSHD, '-D', '-e']
    for setting in SSHD_SETTINGS:
        argv += ['-o', setting]
    return argv


def validate_session(name):
    if not isinstance(name, str) or not _SESSION.fullmatch(name):
        raise Failure('VPS session name %r is not valid: use 1 to 63 letters, digits, ".", "_" or "-", starting with a '
                      'letter or digit.' % (name,))
    return name


def snapshot_tag(session, timestamp):
    return '%s%s-%d' % (SNAPSHOT_TAG_PREFIX, session, timestamp)


def snapshot_timestamp(tag, session):
    """The timestamp of a snapshot tag of this session (not of another session whose name starts alike), or None."""
    match = re.fullmatch(r'%s%s-([0-9]+)' % (re.escape(SNAPSHOT_TAG_PREFIX), re.escape(session)), tag)
    return int(match.group(1)) if match else None


def _bind_address(value):
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Failure('bind_address %r is not an IP address: give one of the runner\'s addresses (recommended), or '
                      '0.0.0.0 for all of them.' % (value,))


def is_unspecified(address):
    return ipaddress.ip_address(address).is_unspecified


def default_ssh_host(bind_address, docker_host):
    """Where users reach the session: a specific bind address, else the daemon's host (tcp://, ssh://), else this node."""
    if bind_address and not is_unspecified(bind_address):
        return bind_address
    match = re.match(r'^(?:tcp|ssh|https?)://(?:[^@/]*@)?(\[[^\]]+\]|[^:/]+)', docker_host or '')
    if match:
        return match.group(1).strip('[]')
    return socket.getfqdn()


def ssh_command(host, port):
    return 'ssh -p %d root@%s' % (port, host) if port else None


def known_hosts_line(host, port, host_key):
    """The known_hosts line of the session's host key, so the first login needs no trust on first use."""
    if not (host and port and host_key):
        return None
    key_type, data = host_key.split()[:2]
    return '[%s]:%d %s %s' % (host, port, key_type, data)


class VpsRequest(object):
    """The validated parameters of one vps task. Keys, names, addresses and limits are checked here."""

    def __init__(self, params):
        self.session = validate_session(params.get('name'))
        self.name = vps_container_name(self.session)
        self.state = params.get('state') or 'started'
        self.env = validate_env_name(params['env'], 'env') if params.get('env') else None
        if self.state == 'started' and not self.env:
            raise Failure('Give env: the environment the session runs (kohakuriver/<env>:base).')
        self.keys = None
        if params.get('authorized_keys') is not None:
            self.keys = parse_authorized_keys(params['authorized_keys'])
        self.generate_key = bool(params.get('generate_key'))
        if self.keys is not None and self.generate_key:
            raise Failure('Give authorized_keys or generate_key: true, not both.')
        port = params.get('port')
        if port is not None and not 1 <= port <= 65535:
            raise Failure('port %s is not a TCP port (1 to 65535).' % port)
        self.port = port
        self.bind_address = _bind_address(params['bind_address']) if params.get('bind_address') else None
        self.ssh_host = params.get('ssh_host') or None
        if self.ssh_host is not None and not _HOST_NAME.fullmatch(self.ssh_host):
            raise Failure('ssh_host %r is not a host name or address.' % (self.ssh_host,))
        self.run = RunOptions(params) if self.env else None
        self.gpus = [str(gpu).strip() for gpu in params['gpus']] if params.get('gpus') else None
        self.run_view = self.run.requested_view(params) if self.run else {}
        self.mounts_given = params.get('mounts') is not None
        self.cpus = params.get('cpus')
        self.snapshot = bool(params.get('snapshot'))
        self.snapshot_keep = params.get('snapshot_keep', DEFAULT_SNAPSHOT_KEEP)
        if self.snapshot_keep is not None and self.snapshot_keep < 1:
            raise Failure('snapshot_keep must be 1 or more (the snapshot just taken counts).')
        self.stop_timeout = params.get('stop_timeout', DEFAULT_STOP_TIMEOUT)
        self.docker_host = params.get('docker_host')

    def labels(self, port, bind_address, host_key):
        return {LABEL_MANAGED: 'true', LABEL_ENV: self.env, LABEL_VPS: self.session, LABEL_VPS_PORT: str(port),
                LABEL_VPS_BIND: bind_address, LABEL_VPS_HOST_KEY: host_key}

    def wanted(self):
        """The requested options in the shape of actual_options(); only what the request names (env and the shared data
        folder always when env is given)."""
        view = dict(self.run_view)
        if self.env:
            view['env'] = self.env
            view['shared_data'] = self.run.mounts[0]['Source']
        if self.port is not None:
            view['port'] = self.port
        if self.bind_address is not None:
            view['bind_address'] = self.bind_address
        if self.cpus is not None:
            view['cpus'] = self.cpus
        if self.run and self.run.memory is not None:
            view['memory'] = self.run.memory
        if self.gpus is not None:
            view['gpus'] = sorted(self.gpus)
        if self.mounts_given:
            view['mounts'] = sorted(_mount_text(mount) for mount in self.run.mounts[1:])
        return view


def _mount_text(mount):
    return '%s:%s:%s' % (mount['Source'], mount['Target'], 'ro' if mount.get('ReadOnly') else 'rw')


def is_session(attrs, session):
    labels = (attrs.get('Config') or {}).get('Labels') or {}
    return labels.get(LABEL_MANAGED) == 'true' and labels.get(LABEL_VPS) == session


def published(attrs):
    """(bind address, port) of the session's SSH port: what is bound now when running, else what was configured."""
    labels = (attrs.get('Config') or {}).get('Labels') or {}
    live = ((attrs.get('NetworkSettings') or {}).get('Ports') or {}).get(SSH_PORT) or []
    configured = ((attrs.get('HostConfig') or {}).get('PortBindings') or {}).get(SSH_PORT) or []
    bound = [binding for binding in live + configured if binding.get('HostPort')]
    if bound:
        return labels.get(LABEL_VPS_BIND) or bound[0].get('HostIp') or DEFAULT_BIND_ADDRESS, int(bound[0]['HostPort'])
    return labels.get(LABEL_VPS_BIND), _label_port(labels.get(LABEL_VPS_PORT))


def actual_options(attrs):
    """Everything wanted() can name, as the container has it."""
    if not attrs:
        return dict(state='absent')
    config, host = attrs.get('Config') or {}, attrs.get('HostConfig') or {}
    labels = config.get('Labels') or {}
    bind_address, port = published(attrs)
    mounts = host.get('Mounts') or []
    shared = [m.get('Source') for m in mounts if m.get('Target') == SHARED_MOUNT]
    return dict(
        run_view_of(host), state=state_of(attrs), env=labels.get(LABEL_ENV), image=config.get('Image'), port=port,
        bind_address=bind_address, shared_data=shared[0] if shared else None,
        cpus=(host.get('NanoCpus') or 0) / 1e9, memory=host.get('Memory') or 0, gpus=gpus_of(host.get('DeviceRequests')),
        mounts=sorted('%s:%s:%s' % (m.get('Source'), m.get('Target'), 'ro' if m.get('ReadOnly') else 'rw')
                      for m in mounts if m.get('Target') != SHARED_MOUNT),
    )


def find_drift(request, attrs):
    """[{option, wanted, actual}] for each requested option the existing session does not have."""
    actual = actual_options(attrs)
    return [dict(option=option, wanted=wanted, actual=actual.get(option))
            for option, wanted in sorted(request.wanted().items()) if wanted != actual.get(option)]


def drift_warning(name, drift):
    return ('%s differs from the request in %s and is kept as it is (see drift): a session holds its user\'s files, so '
            'it is never recreated. Remove it (state: absent, with snapshot: true to keep its files as an image) and '
            'start it again to apply the request.' % (name, ', '.join(item['option'] for item in drift)))


def _label_port(text):
    """A port number from a label; None when the label is missing or not a number."""
    return int(text) if isinstance(text, str) and text.isascii() and text.isdigit() else None


def _host_key_of(labels):
    """(host key line, fingerprint, problem) from the session's label; a label that is not a public key is a problem
    of this session alone (it is reported, and the other sessions are listed as usual)."""
    host_key = labels.get(LABEL_VPS_HOST_KEY) or None
    if not host_key:
        return None, None, None
    try:
        key = parse_public_key(host_key)
    except Failure:
        return None, None, ('label %s is not an SSH public key; remove the session (state: absent, with snapshot: true '
                            'to keep its files) and start it again to get a new host key.' % LABEL_VPS_HOST_KEY)
    return '%s %s' % (key.key_type, key.base64) + (' ' + key.comment if key.comment else ''), key.fingerprint, None


def describe(attrs, ssh_host=None, docker_host=None):
    """The result shape of one session, from an inspect or a list entry (with `problem` when its labels are broken)."""
    if 'Config' in attrs:
        labels = (attrs.get('Config') or {}).get('Labels') or {}
        name, image, image_id = attrs.get('Name', '').lstrip('/'), attrs['Config'].get('Image'), attrs.get('Image')
        status = (attrs.get('State') or {}).get('Status')
        bind_address, port = published(attrs)
    else:
        labels = attrs.get('Labels') or {}
        name, image, image_id = ((attrs.get('Names') or ['/'])[0]).lstrip('/'), attrs.get('Image'), attrs.get('ImageID')
        status = attrs.get('State')
        bind_address, port = _listed_port(attrs, labels)
    host_key, fingerprint, problem = _host_key_of(labels)
    host = ssh_host or default_ssh_host(bind_address, docker_host)
    described = dict(
        session=labels.get(LABEL_VPS), container=name, id=attrs.get('Id'), env=labels.get(LABEL_ENV), image=image,
        image_id=image_id, status=status, running=status in ('running', 'paused', 'restarting'),
        created=iso_time(attrs.get('Created')), bind_address=bind_address, port=port, host=host,
        ssh_command=ssh_command(host, port), host_key=host_key, host_key_fingerprint=fingerprint,
        known_hosts=known_hosts_line(host, port, host_key),
    )
    if problem:
        described['problem'] = problem
    return described


def _listed_port(entry, labels):
    for binding in entry.get('Ports') or []:
        if binding.get('PrivatePort') == 22 and binding.get('PublicPort'):
            return labels.get(LABEL_VPS_BIND) or binding.get('IP'), int(binding['PublicPort'])
    return labels.get(LABEL_VPS_BIND), _label_port(labels.get(LABEL_VPS_PORT))
