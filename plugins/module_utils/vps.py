# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A VPS session on a runner: a long-running container of kohakuriver/<env>:base whose main process is sshd, reached
by key only on a published port.

Files go into the container as tar archives (put_archive), never through a shell. Setup happens when the session is
created (its own host key, root's authorized_keys, sshd's privilege separation folder) and when the requested keys
change, so a restart by Docker (restart policy, docker restart, a daemon restart) changes nothing inside it.
"""

from __future__ import annotations

import random
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import APIError, explain, inspect_container, inspect_or_none, remove_container
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_files import file_archive, read_text
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import state_of
from ansible_collections.kohakuriver.docker.plugins.module_utils.daemon import Daemon
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    LABEL_ENV, LABEL_MANAGED, LABEL_VPS, LABEL_VPS_PORT, image_repository,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.output import last_lines
from ansible_collections.kohakuriver.docker.plugins.module_utils.times import parse_docker_time
from ansible_collections.kohakuriver.docker.plugins.module_utils.sshkeys import (
    authorized_keys_text, generate_ed25519, parse_public_key,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import daemon_refusal_hint
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_sync import sync_from_source
from ansible_collections.kohakuriver.docker.plugins.module_utils.vps_options import (
    AUTHORIZED_KEYS_PATH, DEFAULT_BIND_ADDRESS, HOST_KEY_PATH, PICK_RANGE, PRIVSEP_DIR, RESTART_POLICY, SSHD, actual_options,
    describe, drift_warning, find_drift, is_session, snapshot_tag, snapshot_timestamp, sshd_argv,
)

READY_TIMEOUT = 15.0
PORT_TRIES = 5
_PORT_TAKEN = ('port is already allocated', 'address already in use')
PREPARE_HINT = ('Prepare the environment for VPS use with the environment role (vps: true), or install openssh-server in '
                'its container (apt-get install -y openssh-server), and package it again.')


class _PortTaken(Failure):
    pass


def key_files(keys_text):
    return [('/root/.ssh', 0o700, None), (AUTHORIZED_KEYS_PATH, 0o600, keys_text)]


def setup_files(host_key, keys_text):
    """What a new session needs besides its image: its own host key, root's keys, and sshd's privilege separation dir."""
    private, public = host_key
    return [('/etc/kohakuriver', 0o755, None), ('/etc/kohakuriver/vps', 0o700, None), (HOST_KEY_PATH, 0o600, private),
            (HOST_KEY_PATH + '.pub', 0o644, public + '\n'), (PRIVSEP_DIR, 0o755, None)] + key_files(keys_text)


def key_summaries(text):
    """Type, fingerprint and comment of each line of an authorized_keys file, as far as they parse."""
    summaries = []
    for number, line in enumerate((text or '').splitlines()):
        if line.strip() and not line.lstrip().startswith('#'):
            try:
                summaries.append(parse_public_key(line, number).summary())
            except Failure:
                summaries.append(dict(type=None, fingerprint=None, comment='line %d is not a public key' % (number + 1),
                                      options=''))
    return summaries


def pick_port(client, rng):
    """A port no container on the daemon publishes and no session was given, from Linux's ephemeral range."""
    used = set()
    for entry in client.api.containers(all=True):
        used.update(binding['PublicPort'] for binding in entry.get('Ports') or [] if binding.get('PublicPort'))
        pinned = (entry.get('Labels') or {}).get(LABEL_VPS_PORT)
        if pinned and pinned.isascii() and pinned.isdigit():
            used.add(int(pinned))
    low, high = PICK_RANGE
    while True:
        port = rng.randint(low, high)
        if port not in used:
            return port


def _logs_since(client, container_id, since):
    return client.api.logs(container_id, stdout=True, stderr=True, since=since, tail=50).decode('utf-8', 'replace')


def start_session(client, name, container_id):
    """Start the container and wait until sshd says it listens; a missing sshd, a taken port or an sshd that ends
    fail. Returns (inspect, warnings)."""
    previous = client.api.inspect_container(container_id)
    before = previous.get('RestartCount', 0)
    # Log lines after the previous run ended (daemon clock) are this run's; a new container has no earlier lines.
    since = parse_docker_time(previous['State'].get('FinishedAt') or '0001-01-01T00:00:00Z')
    since = since if since > 0 else None
    try:
        client.api.start(container_id)
    except APIError as exc:
        text = explain(exc)
        if any(taken in text for taken in _PORT_TAKEN):
            raise _PortTaken('Cannot start %s: its port is taken on the runner (%s).' % (name, text))
        if SSHD in text and ('no such file' in text.lower() or 'not found' in text):
            raise Failure('The image of %s has no %s. %s' % (name, SSHD, PREPARE_HINT))
        raise Failure('Cannot start %s: %s%s' % (name, text, daemon_refusal_hint(text)))
    attrs = client.api.inspect_container(container_id)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        state = attrs.get('State') or {}
        if state.get('Status') != 'running' or attrs.get('RestartCount', 0) != before:
            lines = last_lines(client.api.logs(container_id, stdout=True, stderr=True, tail=20).decode('utf-8', 'replace'), 4, 200)
            # 127: docker-init could not run sshd (the shell convention for "command not found").
            if state.get('ExitCode') == 127 or any(SSHD in line and 'No such file' in line for line in lines):
                raise Failure('The image of %s has no %s. %s' % (name, SSHD, PREPARE_HINT))
            raise Failure('sshd in %s stopped right after it started (exit code %s): %s' % (
                name, state.get('ExitCode'), ' | '.join(lines) or 'no output'))
        if 'Server listening' in _logs_since(client, container_id, since):
            return attrs, []
        if time.monotonic() > deadline:
            return attrs, ['sshd in %s runs but did not log "Server listening" within %d s; if logins fail, see docker '
                           'logs %s.' % (name, READY_TIMEOUT, name)]
        time.sleep(0.1)
        attrs = client.api.inspect_container(container_id)


def create_session(client, request, keys_text, host_key):
    """Create, set up and start the session's container; a failed attempt leaves nothing behind.

    Returns (inspect, warnings)."""
    bind_address = request.bind_address or DEFAULT_BIND_ADDRESS
    rng = random.SystemRandom()
    for _attempt in range(1 if request.port else PORT_TRIES):
        port = request.port or pick_port(client, rng)
        host_config = request.run.host_config(client, port_bindings={22: (bind_address, port)},
                                              restart_policy={'Name': RESTART_POLICY}, init=True)
        try:
            container_id = client.api.create_container(
                request.run.image, entrypoint=sshd_argv(), command=None, name=request.name, ports=[22],
                labels=request.labels(port, bind_address, host_key[1]), host_config=host_config, detach=True,
            )['Id']
        except APIError as exc:
            if getattr(exc, 'status_code', None) == 409:
                raise Failure('A container named %s appeared while the session was being created; run again.'
                              % request.name)
            raise Failure('Cannot create %s from %s: %s%s' % (request.name, request.run.image, explain(exc),
                                                              daemon_refusal_hint(explain(exc))))
        try:
            client.api.put_archive(container_id, '/', file_archive(setup_files(host_key, keys_text)))
            return start_session(client, request.name, container_id)
        except _PortTaken as taken:
            remove_container(client, container_id)
            if request.port:
                raise Failure('%s Choose another port, or leave port unset to have one picked.' % taken.msg)
        except BaseException:
            remove_container(client, container_id)
            raise
    raise Failure('Cannot start %s: %d picked ports were all taken on the runner; give port.' % (request.name, PORT_TRIES))


def session_snapshots(client, env, session):
    """[(timestamp, reference)] of this session's snapshots of env, newest first."""
    repository = image_repository(env)
    found = []
    for image in client.api.images(name=repository):
        for reference in image.get('RepoTags') or []:
            name, _sep, tag = reference.rpartition(':')
            timestamp = snapshot_timestamp(tag, session) if name == repository else None
            if timestamp is not None:
                found.append((timestamp, reference))
    return sorted(found, reverse=True)


def take_snapshot(client, attrs, session, keep):
    """Commit the session to kohakuriver/<env>:vps-<session>-<ts>, keep the newest `keep` of this session's snapshots.

    Returns (reference, removed references, warnings)."""
    env = attrs['Config']['Labels'][LABEL_ENV]
    existing = session_snapshots(client, env, session)
    timestamp = max([int(time.time())] + [stamp + 1 for stamp, _ref in existing])
    tag = snapshot_tag(session, timestamp)
    client.api.commit(attrs['Id'], repository=image_repository(env), tag=tag, pause=True,
                      message='kohakuriver.docker: snapshot of VPS session %s' % session)
    reference = '%s:%s' % (image_repository(env), tag)
    removed, warnings = [], []
    for _stamp, old in ([(timestamp, reference)] + existing)[keep:]:
        try:
            client.api.remove_image(old)
            removed.append(old)
        except APIError as exc:
            if getattr(exc, 'status_code', None) == 409:
                warnings.append('Snapshot %s is kept: a container uses it (%s).' % (old, explain(exc)))
            elif getattr(exc, 'status_code', None) != 404:
                raise
    return reference, removed, warnings


class Session(object):
    """One run of the vps module: what is there, what to do, and the result."""

    def __init__(self, client, request, check_mode):
        self.client = client
        self.request = request
        self.check_mode = check_mode
        self.warnings = []
        self.actions = []
        self.result = dict(changed=False, session=request.session, container=request.name, drift=[], snapshot=None,
                           snapshots_removed=[])
        self.keys_before = None
        self.keys_after = None

    def run(self):
        request = self.request
        attrs = inspect_container(self.client, request.name)
        if attrs and not is_session(attrs, request.session):
            raise Failure('%s exists but is not a VPS session made by kohakuriver.docker (labels %s=true and %s=%s), so '
                          'it is left untouched; choose another session name.'
                          % (request.name, LABEL_MANAGED, LABEL_VPS, request.session))
        env = (((attrs or {}).get('Config') or {}).get('Labels') or {}).get(LABEL_ENV)
        if attrs and request.state != 'started' and request.env and env != request.env:
            raise Failure('Session %s runs environment %s, not %s; nothing was done. Check the names.'
                          % (request.session, env, request.env))
        if request.state == 'started':
            after = self._started(attrs) if attrs else self._create()
        else:
            after = self._stop_or_remove(attrs)
        self.result.update(self._endpoint(after))
        self.result.update(changed=bool(self.actions), actions=self.actions, diff=self._diff(attrs, after))
        return dict(self.result, warnings=self.warnings)

    def _create(self):
        request = self.request
        if request.keys is None and not request.generate_key:
            raise Failure('Session %s does not exist: give authorized_keys (public keys) or generate_key: true to create it.'
                          % request.session)
        self._prepare_image()
        self.actions += ['create', 'start']
        if request.keys is not None:
            self.keys_after = authorized_keys_text(request.keys)
        if self.check_mode:
            return None
        if request.generate_key:
            self.keys_after = self._generated()
        attrs, warnings = create_session(self.client, request, self.keys_after,
                                         generate_ed25519('kohakuriver-vps-' + request.session))
        self.warnings.extend(warnings)
        return attrs

    def _prepare_image(self):
        run = self.request.run
        if run.sync:
            synced = sync_from_source(Daemon.of(self.client), run.env, run.tarball_dir, run.state_dir, run.sync_source,
                                      allow_stale=run.allow_stale, signing=run.signing, check_mode=self.check_mode, pin=run.pin)
            self.warnings.extend(synced.pop('warnings'))
            self.result['sync'] = synced
            if synced['changed']:
                self.actions.append('sync')
        elif inspect_or_none(self.client, run.image) is None:
            raise Failure('No local image %s on this runner: run with sync: true or kohakuriver.docker.image_sync first.'
                          % run.image)

    def _generated(self):
        private, public = generate_ed25519('kohakuriver-vps-%s' % self.request.session)
        self.result.update(private_key=private, public_key=public)
        return public + '\n'

    def _started(self, attrs):
        request = self.request
        drift = find_drift(request, attrs)
        if drift:
            self.result['drift'] = drift
            self.warnings.append(drift_warning(request.name, drift))
        if request.keys is not None or request.generate_key:
            self.keys_before = read_text(self.client, attrs['Id'], AUTHORIZED_KEYS_PATH)
            if request.keys is not None:
                self.keys_after = authorized_keys_text(request.keys)
                if self.keys_after != self.keys_before:
                    self.actions.append('authorized_keys')
            elif not (self.keys_before or '').strip():
                self.actions.append('authorized_keys')
        status = attrs['State']['Status']
        if status == 'paused':
            self.actions.append('unpause')
        elif status not in ('running', 'restarting'):
            self.actions.append('start')
        if self.check_mode or not self.actions:
            return attrs
        if 'authorized_keys' in self.actions:
            if self.keys_after is None:
                self.keys_after = self._generated()
            self.client.api.put_archive(attrs['Id'], '/', file_archive(key_files(self.keys_after)))
        if 'unpause' in self.actions:
            self.client.api.unpause(attrs['Id'])
        if 'start' in self.actions:
            try:
                self.warnings.extend(start_session(self.client, request.name, attrs['Id'])[1])
            except _PortTaken as taken:
                raise Failure('%s The session keeps its port; free it, or remove the session (state: absent, '
                              'snapshot: true keeps its files as an image) and start it again.' % taken.msg)
        return self.client.api.inspect_container(attrs['Id'])

    def _stop_or_remove(self, attrs):
        request = self.request
        if not attrs:
            return None
        running = state_of(attrs) == 'started'
        if request.snapshot and (running or request.state == 'absent'):
            self.actions.append('snapshot')
        if running:
            self.actions.append('stop')
        if request.state == 'absent':
            self.actions.append('remove')
        if self.check_mode or not self.actions:
            return attrs if request.state == 'stopped' or not self.actions else None
        if 'snapshot' in self.actions:
            reference, removed, warnings = take_snapshot(self.client, attrs, request.session, request.snapshot_keep)
            self.result.update(snapshot=reference, snapshots_removed=removed)
            self.warnings.extend(warnings)
        if attrs['State']['Status'] == 'paused':
            self.client.api.unpause(attrs['Id'])
        if running:
            self.client.api.stop(attrs['Id'], timeout=request.stop_timeout)
        if request.state == 'absent':
            remove_container(self.client, attrs['Id'])
            return None
        return self.client.api.inspect_container(attrs['Id'])

    def _endpoint(self, attrs):
        request = self.request
        if attrs:
            return describe(attrs, request.ssh_host, request.docker_host)
        described = dict(id=None, env=request.env, image=None, image_id=None, status='absent', running=False,
                         created=None, bind_address=None, port=None, host=None, ssh_command=None, host_key=None,
                         host_key_fingerprint=None, known_hosts=None)
        if request.state == 'started':
            described.update(image=request.run.image, bind_address=request.bind_address or DEFAULT_BIND_ADDRESS,
                             port=request.port)
        return described

    def _diff(self, attrs, after):
        before = actual_options(attrs)
        if self.check_mode:
            after_view = dict(before)
            if 'create' in self.actions:
                after_view = dict(self.request.wanted(), state='started', image=self.request.run.image)
            for action, state in (('start', 'started'), ('unpause', 'started'), ('stop', 'stopped'), ('remove', 'absent')):
                if action in self.actions:
                    after_view['state'] = state
        else:
            after_view = actual_options(after)
        if after_view.get('state') == 'absent':
            after_view = dict(state='absent')
        if self.keys_before is not None or self.keys_after is not None or 'authorized_keys' in self.actions:
            if attrs:
                before['authorized_keys'] = key_summaries(self.keys_before)
            if self.keys_after is not None:
                after_view['authorized_keys'] = key_summaries(self.keys_after)
            elif 'authorized_keys' in self.actions:
                after_view['authorized_keys'] = [dict(type='ssh-ed25519', fingerprint=None, comment='a new key', options='')]
            else:
                after_view['authorized_keys'] = before['authorized_keys']
        return dict(before=before, after=after_view)


def ensure_session(client, request, check_mode=False):
    """Bring the VPS session to request.state; returns the result dict (with its warnings)."""
    return Session(client, request, check_mode).run()
