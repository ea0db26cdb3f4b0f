# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options a container of an environment runs with on a runner, shared by tasks and VPS sessions: the shared data
folder at /shared, extra mounts, CPU, memory and GPU limits (doc fragment run_options). Validated before any Docker
call; the memory sizes of the container module are read here too (memory_bytes)."""

from __future__ import annotations

import math
import posixpath
import re

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import DockerException, parse_bytes
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.store import pin_timestamp
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    DEFAULT_SHARED_DIR, DEFAULT_STATE_DIR, DEFAULT_STOP_TIMEOUT, TARBALL_FOLDER, image_reference, validate_env_name,
)

SHARED_MOUNT = '/shared'
_ENV_KEY = re.compile(r'^[^=\0]+$')

RUN_ARGUMENT_SPEC = dict(
    shared_dir=dict(type='path', default=DEFAULT_SHARED_DIR),
    tarball_dir=dict(type='path'),
    state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
    mounts=dict(type='list', elements='str'),
    cpus=dict(type='float'),
    memory=dict(type='str'),
    gpus=dict(type='list', elements='str'),
    sync=dict(type='bool', default=True),
    allow_stale=dict(type='bool', default=False),
    pin=dict(type='str'),
)


def absolute_clean(path, what):
    if not path.startswith('/') or '\0' in path or '..' in path.split('/'):
        raise Failure('%s %r must be an absolute path without "..".' % (what, path))
    return posixpath.normpath(path)


def parse_mount(spec):
    """'source:target[:ro|rw]' -> a Docker API bind mount (dict), or Failure saying what is wrong."""
    parts = spec.split(':') if isinstance(spec, str) else []
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ('ro', 'rw')):
        raise Failure('Mount %r is not "source:target" or "source:target:ro|rw" (absolute paths, no ":").' % (spec,))
    source = absolute_clean(parts[0], 'Mount source')
    target = absolute_clean(parts[1], 'Mount target')
    if target == '/':
        raise Failure('Mount %r would cover the container\'s root.' % spec)
    if target == SHARED_MOUNT:
        raise Failure('Mount %r: %s already holds the shared data folder.' % (spec, SHARED_MOUNT))
    return dict(Type='bind', Source=source, Target=target, ReadOnly=len(parts) == 3 and parts[2] == 'ro')


def memory_bytes(value):
    """Docker's own reading of a memory size ('512m', '4g', '1073741824') in bytes; None stays None, and 0 is 0, which
    Docker takes as no limit (docker run --memory 0)."""
    if value is None:
        return None
    try:
        size = int(parse_bytes(str(value).strip()))
    except (DockerException, ValueError, TypeError, IndexError, OverflowError):
        size = -1
    if size < 0:
        raise Failure('memory %r is not a size: use a number of bytes or a number with b, k, m or g, like 512m or 4g; 0 '
                      'for no limit.' % (value,))
    return size


def positive_number(value, option, example):
    """A finite number greater than 0 (None stays None), or Failure saying what to give."""
    if value is not None and (not math.isfinite(value) or value <= 0):
        raise Failure('%s must be greater than 0 and finite (e.g. %s); %r is not.' % (option, example, value))
    return value


def gpu_requests(gpus):
    """GPU device IDs (or ['all']) -> the DeviceRequests of `docker run --gpus device=...`."""
    if not gpus:
        return None
    ids = [str(gpu).strip() for gpu in gpus]
    if any(not gpu or ',' in gpu for gpu in ids):
        raise Failure('gpus must be a list of device IDs (e.g. [0, 1] or [GPU-uuid]) or [all].')
    if ids == ['all']:
        return [dict(driver='', count=-1, capabilities=[['gpu']])]
    return [dict(driver='', count=0, device_ids=ids, capabilities=[['gpu']])]


def environment_list(environment):
    pairs = []
    for key, value in sorted((environment or {}).items()):
        if not _ENV_KEY.match(str(key)):
            raise Failure('Environment variable name %r is not valid.' % (key,))
        pairs.append('%s=%s' % (key, '' if value is None else value))
    return pairs


def stop_timeout_of(params):
    """The stop_timeout option (seconds between SIGTERM and SIGKILL), DEFAULT_STOP_TIMEOUT when not given."""
    stop_timeout = params.get('stop_timeout')
    stop_timeout = DEFAULT_STOP_TIMEOUT if stop_timeout is None else stop_timeout
    if stop_timeout < 0:
        raise Failure('stop_timeout must be 0 or more seconds (e.g. 10); %r is not.' % (stop_timeout,))
    return stop_timeout


class RunOptions(object):
    """Where and with what a container of an environment runs on a runner (tasks and VPS sessions share them):
    shared data at /shared, extra mounts, limits and GPUs. Validated here, before any Docker call."""

    def __init__(self, params):
        self.env = validate_env_name(params['env'], 'env')
        self.shared_dir = absolute_clean(params['shared_dir'], 'shared_dir')
        self.tarball_dir = params.get('tarball_dir') or posixpath.join(self.shared_dir, TARBALL_FOLDER)
        self.state_dir = params['state_dir']
        self.mounts = [dict(Type='bind', Source=posixpath.join(self.shared_dir, 'shared_data'), Target=SHARED_MOUNT,
                            ReadOnly=False)] + [parse_mount(spec) for spec in params.get('mounts') or []]
        targets = [mount['Target'] for mount in self.mounts]
        if len(set(targets)) != len(targets):
            raise Failure('Two mounts share a target: %s.' % ', '.join(sorted(targets)))
        cpus = positive_number(params.get('cpus'), 'cpus', '0.5 or 2')
        self.nano_cpus = int(round(cpus * 1e9)) if cpus else None
        self.memory = memory_bytes(params.get('memory'))
        self.device_requests = gpu_requests(params.get('gpus'))
        self.privileged = bool(params.get('privileged'))
        self.network = params.get('network') or None
        self.sync = params.get('sync', True)
        self.allow_stale = params.get('allow_stale', False)
        self.pin = params.get('pin')
        if self.pin is not None:
            pin_timestamp(self.env, self.pin)

    @property
    def image(self):
        return image_reference(self.env)

    def host_config(self, client, **extra):
        """The HostConfig of these options; extra: more create_host_config arguments (ports, restart policy)."""
        return client.api.create_host_config(
            mounts=self.mounts, nano_cpus=self.nano_cpus, mem_limit=self.memory, device_requests=self.device_requests,
            privileged=self.privileged, network_mode=self.network, **extra
        )
