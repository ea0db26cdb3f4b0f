# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An environment container continuing from its own commit, so that its next commit holds only what changed since.

The container is recreated from the committed image with its name, Config (environment, labels, hostname, user,
working folder, keep-alive entrypoint), HostConfig (binds, mounts, limits, devices, restart policy, network mode),
its networks, every volume re-attached by name (anonymous ones too) and its running state. The image it was declared
with stays recorded in two labels (names.LABEL_BASE_IMAGE, LABEL_BASE_IMAGE_ID) for container's drift rules.

Steps, each undone when a later one fails: the marker .<env>.continue names the old container; the old one is renamed
aside (<name>.chained-<id12>); the new one is created and the marker records it; the new one is started when the old
one ran; only then the old one is removed (its volumes stay: they are the new one's). A run killed at any step leaves
the marker; the next run (recover) completes a continuation whose old container is already gone and rolls back any
other: the new container removed, the old one renamed back and started again when it ran.
"""

from __future__ import annotations

import copy
import json
import os
import signal

from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.client import APIError, DOCKER_ERRORS, explain
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import LABEL_BASE_IMAGE, LABEL_BASE_IMAGE_ID

# Tests kill a run at one named step (SIGKILL, as an operator or the OOM killer would) to prove recover() handles it.
KILL_AT_VARIABLE = 'KOHAKURIVER_DOCKER_TEST_SIGKILL_AT'
STEPS = ('marked', 'aside', 'created', 'started', 'removed')
_QUIET = DOCKER_ERRORS + (OSError, ValueError)
_DEFAULT_NETWORKS = ('default', 'bridge', 'host', 'none')


def marker_path(folder, env):
    return os.path.join(folder, '.%s.continue' % env)


def aside_name(name, container_id):
    return '%s.chained-%s' % (name, container_id[:12])


def base_labels(attrs):
    """The labels naming the image a container was declared with: kept when it has them, else its own image."""
    labels = (attrs.get('Config') or {}).get('Labels') or {}
    if labels.get(LABEL_BASE_IMAGE) and labels.get(LABEL_BASE_IMAGE_ID):
        return {LABEL_BASE_IMAGE: labels[LABEL_BASE_IMAGE], LABEL_BASE_IMAGE_ID: labels[LABEL_BASE_IMAGE_ID]}
    return {LABEL_BASE_IMAGE: (attrs.get('Config') or {}).get('Image') or attrs['Image'], LABEL_BASE_IMAGE_ID: attrs['Image']}


def _volumes_to_reattach(attrs, host_config):
    """Mounts naming every volume the container has that its HostConfig does not (anonymous ones), by name."""
    covered = set()
    for bind in host_config.get('Binds') or []:
        parts = bind.split(':')
        covered.add(parts[1] if len(parts) > 1 else parts[0])
    covered.update(mount.get('Target') for mount in host_config.get('Mounts') or [])
    return [dict(Type='volume', Source=mount['Name'], Target=mount['Destination'], ReadOnly=not mount.get('RW', True))
            for mount in attrs.get('Mounts') or []
            if mount.get('Type') == 'volume' and mount.get('Name') and mount.get('Destination') not in covered]


def _endpoint(endpoint, old_id):
    aliases = [alias for alias in endpoint.get('Aliases') or [] if alias != old_id[:12]]
    found = dict(Aliases=aliases or None, IPAMConfig=endpoint.get('IPAMConfig'), Links=endpoint.get('Links'))
    return dict((key, value) for key, value in found.items() if value)


def user_networks(attrs):
    """{network: endpoint settings} of the user-defined networks the container is connected to."""
    networks = (attrs.get('NetworkSettings') or {}).get('Networks') or {}
    return dict((name, _endpoint(endpoint or {}, attrs['Id'])) for name, endpoint in networks.items()
                if name not in _DEFAULT_NETWORKS)


def continuation_config(attrs, image_id):
    """The create request of the container continuing attrs from image_id (Config, HostConfig, primary network)."""
    config = copy.deepcopy(attrs.get('Config') or {})
    config['Image'] = image_id
    config['Labels'] = dict(config.get('Labels') or {}, **base_labels(attrs))
    host_config = copy.deepcopy(attrs.get('HostConfig') or {})
    host_config['Mounts'] = list(host_config.get('Mounts') or []) + _volumes_to_reattach(attrs, host_config)
    config['HostConfig'] = host_config
    primary = host_config.get('NetworkMode') or ''
    if primary.startswith('container:'):
        # Docker gives it the other container's hostname and refuses one of its own.
        for key in ('Hostname', 'Domainname', 'MacAddress'):
            config.pop(key, None)
    networks = user_networks(attrs)
    if primary in networks:
        config['NetworkingConfig'] = dict(EndpointsConfig={primary: networks[primary]})
    return config


def _reach(step):
    if os.environ.get(KILL_AT_VARIABLE) == step:
        os.kill(os.getpid(), signal.SIGKILL)


def _inspect_or_none(client, container_id):
    try:
        return client.api.inspect_container(container_id)
    except APIError as exc:
        if getattr(exc, 'status_code', None) != 404:
            raise
    return None


class Continuation(object):
    """One container (attrs: its inspect) continuing from an image; run(image_id) does it or puts the old one back.

    marker: the marker file; new_id: the continuing container once created.
    """

    def __init__(self, client, attrs, marker, on_step=None):
        self.client = client
        self.attrs = attrs
        self.marker = marker
        self.on_step = on_step or (lambda text: None)
        self.name = attrs['Name'].lstrip('/')
        self.state = dict(old_id=attrs['Id'], name=self.name, aside=aside_name(self.name, attrs['Id']),
                          running=bool(attrs['State'].get('Running')), image=None, new_id=None)
        self.new_id = None

    def run(self, image_id):
        """Continue the container from image_id; on any failure put the old one back and raise a Failure."""
        self.state['image'] = image_id
        self._mark()
        _reach('marked')
        try:
            self.on_step('renaming %s aside to continue it from its commit' % self.name)
            self.client.api.rename(self.state['old_id'], self.state['aside'])
            _reach('aside')
            self.on_step('creating %s from its commit' % self.name)
            self.new_id = self._create(image_id)
            self.state['new_id'] = self.new_id
            self._mark()
            _reach('created')
            if self.state['running']:
                self.on_step('starting %s continued from its commit' % self.name)
                self._start(self.new_id)
            _reach('started')
            self.on_step('removing the container %s continues' % self.name)
            self.client.api.remove_container(self.state['old_id'], v=False)
            _reach('removed')
        except BaseException as exc:
            problem = roll_back(self.client, self.state, start=False)
            self.new_id = None
            if problem is None:
                # The old container is back under its name: what is left (starting it) is the restart marker's.
                store.remove_quietly(self.marker)
                problem = self._start_old()
            cause = exc.msg if isinstance(exc, Failure) else explain(exc)
            raise Failure('could not continue %s from its commit: %s; it was put back as it was%s'
                          % (self.name, cause.rstrip('.'), '' if problem is None else ', but ' + problem))
        store.remove_quietly(self.marker)
        return self.new_id

    def _start_old(self):
        if not self.state['running']:
            return None
        try:
            self.client.api.start(self.state['old_id'])
        except _QUIET as exc:
            return 'could not start it again: %s' % explain(exc).rstrip('.')
        return None

    def _mark(self):
        store.write_json_atomically(self.marker, self.state, 0o644)

    def _create(self, image_id):
        created = self.client.api.create_container_from_config(continuation_config(self.attrs, image_id), self.name)
        primary = (self.attrs.get('HostConfig') or {}).get('NetworkMode')
        for network, endpoint in user_networks(self.attrs).items():
            if network != primary:
                self.client.api.connect_container_to_network(created['Id'], network,
                                                             aliases=endpoint.get('Aliases'), links=endpoint.get('Links'))
        return created['Id']

    def _start(self, container_id):
        self.client.api.start(container_id)
        state = self.client.api.inspect_container(container_id)['State']
        if not state.get('Running'):
            raise Failure('it exited right after it started, with exit code %s' % state.get('ExitCode'))


def roll_back(client, state, start=True):
    """Put the old container of a continuation (state: its marker) back under its name (and with start, running
    when it ran); None when done, else what could not be done."""
    try:
        new_id = state.get('new_id') or _unrecorded_new(client, state)
        if new_id:
            try:
                client.api.remove_container(new_id, force=True, v=False)
            except APIError as exc:
                if getattr(exc, 'status_code', None) != 404:
                    raise
        old = _inspect_or_none(client, state['old_id'])
        if old is None:
            return 'the old container %s is gone' % state['old_id'][:12]
        if old['Name'].lstrip('/') != state['name']:
            client.api.rename(state['old_id'], state['name'])
        if start and state.get('running') and not old['State'].get('Running'):
            client.api.start(state['old_id'])
    except _QUIET as exc:
        return 'putting it back failed: %s' % explain(exc)
    return None


def _unrecorded_new(client, state):
    """The container a run killed right after creating it left under the name (made from the committed image)."""
    found = _inspect_or_none(client, state['name'])
    if found and found['Id'] != state['old_id'] and state.get('image') and found.get('Image') == state['image']:
        return found['Id']
    return None


def recover(client, marker):
    """Finish what a killed continuation left (marker names it): None without a marker, else what was done."""
    try:
        with open(marker) as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(state, dict) or not state.get('old_id') or not state.get('name'):
        store.remove_quietly(marker)
        return None
    if _inspect_or_none(client, state['old_id']) is None:
        new = _inspect_or_none(client, state['name'])
        if new and state.get('running') and not new['State'].get('Running'):
            client.api.start(new['Id'])
        store.remove_quietly(marker)
        return 'completed the continuation of %s an interrupted run had begun' % state['name']
    problem = roll_back(client, state)
    if problem is not None:
        raise Failure('An interrupted run left %s half continued from its commit and %s; see %s.'
                      % (state['name'], problem, marker))
    store.remove_quietly(marker)
    return 'put back the container an interrupted run was continuing from its commit'
