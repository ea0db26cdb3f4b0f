# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The environment container's lifecycle on one daemon: find it, decide what to do, do it, report it.

An unchanged run costs one container inspect (plus one image inspect when image is given).
"""

from __future__ import annotations

import re
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import (
    APIError, Mount, NotFound, explain, inspect_container, parse_repository_tag,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import (
    actual_options, declared_image, declared_labels, describe, drift_warning, find_drift, foreign_container, is_managed,
    state_of,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    CONTAINER_PREFIX, DEFAULT_STOP_TIMEOUT, container_name, validate_env_name,
)


def local_image_id(client, image):
    try:
        return client.api.inspect_image(image)['Id']
    except NotFound:
        return None


def _pull_failed(image, cause):
    return Failure('Cannot pull image %s: %s. Check the name and that its registry has it, or load it on the Docker '
                   'host and set pull: never.' % (image, ' '.join(str(cause).split())))


def pull_image(client, image):
    """Pull image (streaming the progress, never buffering it) and return its local ID."""
    repository, tag = parse_repository_tag(image)
    try:
        for event in client.api.pull(repository, tag=tag or 'latest', stream=True, decode=True):
            if isinstance(event, dict) and event.get('error'):
                raise _pull_failed(image, event['error'])
    except APIError as exc:
        raise _pull_failed(image, explain(exc))
    return local_image_id(client, image)


def ensure_image(client, image, pull, needed, check_mode):
    """(local image ID or None, whether a pull changed or would change it) under the pull policy.

    needed: a container is about to be created from image, so it must exist afterwards.
    """
    before = local_image_id(client, image)
    if pull == 'never' or (pull == 'missing' and (before or not needed)):
        if needed and not before:
            raise Failure('Image %s is not on the Docker host and pull is never: load or build it there first, '
                          'or set pull: missing.' % image)
        return before, False
    if check_mode:
        if not before:
            try:
                client.api.inspect_distribution(image)
            except APIError as exc:
                raise _pull_failed(image, explain(exc))
        return before, not before
    after = pull_image(client, image)
    return after, after != before


def _mounts(specs):
    return [Mount(target=m['target'], source=m['source'], type=m['type'], read_only=m['read_only']) for m in specs]


NEW_CONTAINER_SETTLE = 0.2
_NO_SHELL_HINT = ' Environment containers need an image with a POSIX shell (sh).'


def create_container(client, request, image):
    create, host_config = request.create_arguments(image)
    create['labels'].update(declared_labels(image, local_image_id(client, image)))
    if 'mounts' in host_config:
        host_config['mounts'] = _mounts(host_config['mounts'])
    try:
        return client.api.create_container(host_config=client.api.create_host_config(**host_config), **create)['Id']
    except APIError as exc:
        raise Failure('Cannot create %s from %s: %s' % (request.name, image, explain(exc)))


def start_container(client, name, container_id, settle=0.0):
    """Start the container and make sure it keeps running; settle: seconds to watch a new one (no sh: exits at once)."""
    try:
        client.api.start(container_id)
    except APIError as exc:
        no_shell = 'executable file not found' in explain(exc) or 'no such file' in explain(exc).lower()
        raise Failure('Cannot start %s: %s.%s' % (name, explain(exc).rstrip('.'), _NO_SHELL_HINT if no_shell else ''))
    attrs = client.api.inspect_container(container_id)
    if settle and state_of(attrs) == 'started':
        time.sleep(settle)
        attrs = client.api.inspect_container(container_id)
    if state_of(attrs) != 'started':
        code = attrs['State'].get('ExitCode')
        logs = client.api.logs(container_id, stdout=True, stderr=True, tail=3).decode('utf-8', 'replace')
        raise Failure('%s stopped right after it started, with exit code %s%s.%s' % (
            name, code, (': ' + ' '.join(logs.split())) if logs.strip() else '', _NO_SHELL_HINT if code == 127 else ''))
    return attrs


def _create_and_start(client, request, image, start):
    container_id = create_container(client, request, image)
    if start:
        try:
            start_container(client, request.name, container_id, settle=NEW_CONTAINER_SETTLE)
        except Failure:
            client.api.remove_container(container_id, force=True)
            raise
    return container_id


def _recreate(client, request, attrs, image, start):
    """Replace the container; the old one is only removed once the new one runs, else it is put back."""
    old_id, was_running = attrs['Id'], state_of(attrs) == 'started'
    if was_running:
        client.api.stop(old_id, timeout=DEFAULT_STOP_TIMEOUT)
    client.api.rename(old_id, '%s.replaced-%s' % (request.name, old_id[:12]))
    try:
        _create_and_start(client, request, image, start)
    except Exception:
        client.api.rename(old_id, request.name)
        if was_running:
            client.api.start(old_id)
        raise
    client.api.remove_container(old_id)


def plan(request, attrs, drift):
    """The actions that bring the container to the requested state, in order."""
    status = (attrs or {}).get('State', {}).get('Status')
    if request.state == 'absent':
        if not attrs:
            return []
        return (['stop'] if state_of(attrs) == 'started' else []) + ['remove']
    if not attrs or (drift and request.recreate):
        start = request.state == 'started' or (request.state == 'present' and state_of(attrs) == 'started')
        return (['recreate'] if attrs else ['create']) + (['start'] if start else [])
    if request.state == 'started':
        return [] if status in ('running', 'restarting') else ['unpause'] if status == 'paused' else ['start']
    if request.state == 'stopped' and state_of(attrs) == 'started':
        return ['stop']
    return []


def ensure(client, request, check_mode=False):
    """Bring the environment container to request.state; returns the result dict (with its warnings)."""
    attrs = inspect_container(client, request.name)
    adopted = bool(attrs) and not is_managed((attrs.get('Config') or {}).get('Labels'))
    if adopted and not request.adopt:
        raise foreign_container(request.name, attrs)
    if request.state != 'absent' and not attrs and not request.image:
        raise Failure('%s does not exist; give image to create it.' % request.name)

    warnings, drift, pulled, image = [], [], False, request.image
    if request.state != 'absent':
        image_id = None
        if request.image:
            image_id, pulled = ensure_image(client, request.image, request.pull, not attrs, check_mode)
        drift = find_drift(request, attrs, image_id) if attrs else []
        if drift:
            warnings.append(drift_warning(request.name, drift, request.recreate))
        if drift and request.recreate and not request.image:
            image = declared_image(attrs)[0]
            pulled = ensure_image(client, image, request.pull, True, check_mode)[1]
    actions = (['pull'] if pulled else []) + plan(request, attrs, drift)
    if actions and not check_mode:
        _act(client, request, attrs, image, actions)

    now = attrs
    if actions and not check_mode:
        now = None if request.state == 'absent' else inspect_container(client, request.name)
    if now:
        container = describe(now)
    else:
        gone = describe(attrs) if attrs else dict(id=None, name=request.name, env=request.env, image=request.image)
        container = dict(gone, status='absent', running=False)
    result = dict(changed=bool(actions), actions=actions, container=container, drift=drift, adopted=adopted,
                  diff=_diff(request, attrs, actions), warnings=warnings)
    return result


def _act(client, request, attrs, image, actions):
    if 'create' in actions:
        _create_and_start(client, request, image, 'start' in actions)
    elif 'recreate' in actions:
        _recreate(client, request, attrs, image, 'start' in actions)
    elif 'start' in actions:
        start_container(client, request.name, attrs['Id'])
    elif 'unpause' in actions:
        client.api.unpause(attrs['Id'])
    if 'stop' in actions:
        client.api.stop(attrs['Id'], timeout=DEFAULT_STOP_TIMEOUT)
    if 'remove' in actions:
        client.api.remove_container(attrs['Id'])


def _diff(request, attrs, actions):
    before = actual_options(attrs, request)
    if 'remove' in actions:
        return dict(before=before, after=dict(state='absent'))
    after = dict(before)
    if 'create' in actions or 'recreate' in actions:
        after.update(request.wanted())
        if not request.image:
            after['image'] = before.get('image')
    for action in actions:
        if action in ('create', 'recreate', 'stop'):
            after['state'] = 'stopped'
        if action in ('start', 'unpause'):
            after['state'] = 'started'
    return dict(before=before, after=after)


class ContainerListRequest(object):
    """The validated parameters of one container_info task: one environment's container, or every one (env None)."""

    def __init__(self, params):
        self.env = validate_env_name(params['name']) if params.get('name') is not None else None


def list_containers(client, request):
    """container_info: every environment container on the daemon (ours and foreign), or only request.env's (one list
    call, no inspects), and the daemon's version."""
    env = request.env
    pattern = '^/%s$' % re.escape(container_name(env)) if env else '^/%s' % re.escape(CONTAINER_PREFIX)
    found = [describe(entry) for entry in client.api.containers(all=True, filters={'name': pattern})]
    version = client.api.version()
    return dict(changed=False,
                containers=sorted((c for c in found if c['env'] and (env is None or c['env'] == env)), key=lambda c: c['name']),
                engine=dict(version=version.get('Version'), api_version=version.get('ApiVersion')))
