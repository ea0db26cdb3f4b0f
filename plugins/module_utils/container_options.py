# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a user asks of an environment container, how Docker reports it, and where the two differ.

Pure logic: no daemon calls, so every decision here is unit-tested.
"""

from __future__ import annotations

import math

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import parse_repository_tag
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    KEEP_ALIVE, LABEL_BASE_IMAGE, LABEL_BASE_IMAGE_ID, LABEL_ENV, LABEL_MANAGED, container_name, env_of_container,
    validate_env_name,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import memory_bytes
from ansible_collections.kohakuriver.docker.plugins.module_utils.times import iso_time

RESTART_POLICIES = ('no', 'always', 'on-failure', 'unless-stopped')
MOUNT_TYPES = ('bind', 'volume')


def _text_dict(value, option):
    if value is None:
        return None
    result = {}
    for key, item in value.items():
        if item is None or isinstance(item, (dict, list)):
            raise Failure('%s[%r] must be a string, not %r.' % (option, key, item))
        if option == 'env' and (not str(key) or '=' in str(key) or '\0' in str(key)):
            raise Failure('env name %r is not valid: a variable name is not empty and holds no "=" or NUL.' % (key,))
        result[str(key)] = item if isinstance(item, str) else str(item).lower() if isinstance(item, bool) else str(item)
    return result


def _mount(spec):
    mount = dict(type=spec.get('type') or 'bind', source=spec.get('source'), target=spec.get('target'),
                 read_only=bool(spec.get('read_only')))
    if not (mount['source'] and isinstance(mount['source'], str) and mount['target'] and isinstance(mount['target'], str)):
        raise Failure('Every entry of mounts needs a source and a target; got %r.' % (spec,))
    if not mount['target'].startswith('/'):
        raise Failure('mounts target %r must be an absolute path inside the container.' % mount['target'])
    if mount['type'] == 'bind' and not mount['source'].startswith('/'):
        raise Failure('mounts source %r of a bind mount must be an absolute path on the Docker host.' % mount['source'])
    return mount


def image_key(reference):
    """A registry reference written one way: 'busybox', 'busybox:latest' and 'docker.io/library/busybox' are one image."""
    if not reference or reference.startswith('sha256:'):
        return reference
    repository, tag = parse_repository_tag(reference)
    for prefix in ('docker.io/', 'index.docker.io/'):
        if repository.startswith(prefix):
            repository = repository[len(prefix):]
    if repository.startswith('library/'):
        repository = repository[len('library/'):]
    separator = '@' if tag and ':' in tag else ':'
    return '%s%s%s' % (repository, separator, tag or 'latest')


class Request(object):
    """The validated parameters of one container task. Validation happens here, before any Docker call."""

    def __init__(self, params):
        self.env = validate_env_name(params.get('name'))
        self.name = container_name(self.env)
        self.image = params.get('image') or None
        self.state = params.get('state') or 'started'
        self.pull = params.get('pull') or 'missing'
        self.recreate = bool(params.get('recreate'))
        self.adopt = bool(params.get('adopt'))
        self.env_vars = _text_dict(params.get('env'), 'env')
        self.labels = _text_dict(params.get('labels'), 'labels')
        for key in (self.labels or {}):
            if key in (LABEL_MANAGED, LABEL_ENV):
                raise Failure('labels must not set %s: the collection sets it itself.' % key)
        mounts = params.get('mounts')
        self.mounts = None if mounts is None else sorted((_mount(m) for m in mounts), key=lambda m: m['target'])
        self.cpus = params.get('cpus')
        if self.cpus is not None and not (isinstance(self.cpus, (int, float)) and math.isfinite(self.cpus)):
            raise Failure('cpus must be a number of CPUs (1.5, or 0 for no limit), not %s.' % (self.cpus,))
        if self.cpus is not None and self.cpus < 0:
            raise Failure('cpus must be 0 (no limit) or more, not %s.' % self.cpus)
        self.memory = memory_bytes(params.get('memory'))
        self.restart_policy = params.get('restart_policy')

    def all_labels(self):
        labels = dict(self.labels or {})
        labels[LABEL_MANAGED] = 'true'
        labels[LABEL_ENV] = self.env
        return labels

    def create_arguments(self, image):
        """(arguments of APIClient.create_container without host_config, arguments of create_host_config)."""
        host_config = dict(init=True)
        if self.mounts:
            host_config['mounts'] = [dict(m) for m in self.mounts]
        if self.cpus:
            host_config['nano_cpus'] = int(round(self.cpus * 1e9))
        if self.memory:
            host_config['mem_limit'] = self.memory
        if self.restart_policy:
            host_config['restart_policy'] = {'Name': self.restart_policy}
        create = dict(image=image, name=self.name, entrypoint=list(KEEP_ALIVE), labels=self.all_labels(),
                      detach=True, stop_signal='SIGTERM')
        if self.env_vars:
            create['environment'] = dict(self.env_vars)
        return create, host_config

    def wanted(self):
        """The requested options in the shape of actual_options() (without state), for drift and diffs."""
        view = {}
        if self.image:
            view['image'] = self.image
        for option in ('env_vars', 'labels', 'mounts', 'cpus', 'memory', 'restart_policy'):
            if getattr(self, option) is not None:
                view[_OPTION_NAMES[option]] = getattr(self, option)
        return view


_OPTION_NAMES = dict(env_vars='env', labels='labels', mounts='mounts', cpus='cpus', memory='memory',
                     restart_policy='restart_policy')


def _env_of(config):
    result = {}
    for item in config.get('Env') or []:
        key, _sep, value = item.partition('=')
        result[key] = value
    return result


def _mounts_of(host_config):
    found = {}
    for bind in host_config.get('Binds') or []:
        parts = bind.split(':')
        source, target = parts[0], parts[1] if len(parts) > 1 else parts[0]
        options = parts[2].split(',') if len(parts) > 2 else []
        found[target] = dict(type='bind' if source.startswith('/') else 'volume', source=source, target=target,
                             read_only='ro' in options)
    for mount in host_config.get('Mounts') or []:
        found[mount.get('Target')] = dict(type=(mount.get('Type') or 'bind').lower(), source=mount.get('Source') or '',
                                          target=mount.get('Target'), read_only=bool(mount.get('ReadOnly')))
    return [found[target] for target in sorted(found)]


def declared_labels(reference, image_id):
    """The labels recording the image a new environment container is declared with (kept when it continues)."""
    return {LABEL_BASE_IMAGE: reference, LABEL_BASE_IMAGE_ID: image_id} if reference and image_id else {}


def declared_image(attrs):
    """(reference, ID) of the image a container (inspected, or a list entry) was declared with.

    A container that continues from its own commit (continuation.py) runs that commit; its labels name the image it
    was declared with, and drift compares against that one. Without the labels: the image it runs.
    """
    inspected = 'Config' in attrs
    labels = ((attrs.get('Config') or {}).get('Labels') if inspected else attrs.get('Labels')) or {}
    reference = (attrs.get('Config') or {}).get('Image') if inspected else attrs.get('Image')
    image_id = attrs.get('Image') if inspected else attrs.get('ImageID')
    if labels.get(LABEL_BASE_IMAGE) and labels.get(LABEL_BASE_IMAGE_ID):
        return labels[LABEL_BASE_IMAGE], labels[LABEL_BASE_IMAGE_ID]
    return reference, image_id


def state_of(attrs):
    """'absent', 'started' or 'stopped', in the words of the state option."""
    if not attrs:
        return 'absent'
    return 'started' if (attrs.get('State') or {}).get('Status') in ('running', 'paused', 'restarting') else 'stopped'


def actual_options(attrs, request):
    """The options the request names, as the container has them (env and labels: only the keys asked for)."""
    if not attrs:
        return dict(state='absent')
    config, host = attrs.get('Config') or {}, attrs.get('HostConfig') or {}
    view = dict(state=state_of(attrs), image=declared_image(attrs)[0])
    if request.env_vars is not None:
        env = _env_of(config)
        view['env'] = dict((key, env.get(key)) for key in request.env_vars)
    if request.labels is not None:
        labels = config.get('Labels') or {}
        view['labels'] = dict((key, labels.get(key)) for key in request.labels)
    if request.mounts is not None:
        view['mounts'] = _mounts_of(host)
    if request.cpus is not None:
        view['cpus'] = (host.get('NanoCpus') or 0) / 1e9
    if request.memory is not None:
        view['memory'] = host.get('Memory') or 0
    if request.restart_policy is not None:
        view['restart_policy'] = ((host.get('RestartPolicy') or {}).get('Name') or 'no')
    return view


def find_drift(request, attrs, image_id=None):
    """[{option, wanted, actual}] for each requested option the existing container does not have.

    image: the name differs and the name's image (image_id, when known locally) is not the one the container
    runs; image_id: same name, but the name now points at another image (for example after a pull).
    """
    drift = []
    actual = actual_options(attrs, request)
    running_id = declared_image(attrs)[1]
    if request.image:
        same_name = image_key(request.image) == image_key(actual['image'])
        if not same_name and (image_id is None or image_id != running_id):
            drift.append(dict(option='image', wanted=request.image, actual=actual['image']))
        elif image_id and image_id != running_id:
            drift.append(dict(option='image_id', wanted=image_id, actual=running_id))
    wanted = request.wanted()
    for option in ('env', 'labels', 'mounts', 'cpus', 'memory', 'restart_policy'):
        if option not in wanted or wanted[option] == actual[option]:
            continue
        if option in ('env', 'labels'):
            keys = [key for key in wanted[option] if wanted[option][key] != actual[option][key]]
            drift.append(dict(option=option, wanted=dict((k, wanted[option][k]) for k in keys),
                              actual=dict((k, actual[option][k]) for k in keys)))
        else:
            drift.append(dict(option=option, wanted=wanted[option], actual=actual[option]))
    return drift


def drift_warning(name, drift, recreate):
    options = ', '.join(item['option'] for item in drift)
    if recreate:
        return '%s differs from the request in %s; recreating it as recreate is true.' % (name, options)
    return ('%s differs from the request in %s and is kept as it is (see drift). Set recreate: true to replace it; '
            'changes made inside the container are then lost.' % (name, options))


def is_managed(labels):
    return (labels or {}).get(LABEL_MANAGED) == 'true'


def foreign_container(name, attrs):
    """The Failure for a container of an environment's name that this collection did not make (adopt is false)."""
    return Failure('%s exists but was not made by kohakuriver.docker (it has no %s=true label), so it is left '
                   'untouched. Set adopt: true to manage it as an environment container, or rename it.'
                   % (name, LABEL_MANAGED), container=describe(attrs))


def describe(attrs):
    """The result shape of one container, from an inspect (container) or a list entry (container_info)."""
    if 'Config' in attrs:
        name = attrs.get('Name', '').lstrip('/')
        config, state = attrs.get('Config') or {}, attrs.get('State') or {}
        labels, image_id = config.get('Labels') or {}, attrs.get('Image')
        status, status_text = state.get('Status'), None
    else:
        name = ((attrs.get('Names') or ['/'])[0]).lstrip('/')
        labels, image_id = attrs.get('Labels') or {}, attrs.get('ImageID')
        status, status_text = attrs.get('State'), attrs.get('Status')
    image = declared_image(attrs)[0]
    result = dict(id=attrs.get('Id'), name=name, env=env_of_container(name), image=image, image_id=image_id,
                  status=status, running=status in ('running', 'paused', 'restarting'),
                  created=iso_time(attrs.get('Created')), labels=labels, managed=is_managed(labels))
    if status_text:
        result['status_text'] = status_text
    return result
