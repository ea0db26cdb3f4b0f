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
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import REGISTRY_ARGUMENT_SPEC
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_sync import SOURCES, SyncSource
from ansible_collections.kohakuriver.docker.plugins.module_utils.signing import SigningPolicy

SHARED_MOUNT = '/shared'
_ENV_KEY = re.compile(r'^[^=\0]+$')
_GPU_ID = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.:-]*')
_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_.-]{0,127}')
_USER = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?')
_CAPABILITY = re.compile(r'[A-Z][A-Z_]*')
_LIMIT = re.compile(r'-1|[0-9]{1,19}')
_IPC_MODES = ('private', 'shareable', 'host', 'none')
_ULIMITS = frozenset(('core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss',
                      'rtprio', 'rttime', 'sigpending', 'stack'))
_ENV_FILE_LIMIT = 1 << 20

RUN_ARGUMENT_SPEC = dict(
    shared_dir=dict(type='path', default=DEFAULT_SHARED_DIR),
    tarball_dir=dict(type='path'),
    state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
    mounts=dict(type='list', elements='str'),
    cpus=dict(type='float'),
    memory=dict(type='str'),
    gpus=dict(type='list', elements='str'),
    available_gpus=dict(type='list', elements='str'),
    shm_size=dict(type='str'),
    ipc_mode=dict(type='str'),
    ulimits=dict(type='list', elements='str'),
    devices=dict(type='list', elements='str'),
    capabilities=dict(type='list', elements='str', aliases=['cap_add']),
    runtime=dict(type='str'),
    sync=dict(type='bool', default=True),
    allow_stale=dict(type='bool', default=False),
    allowed_signers=dict(type='path'),
    require_signature=dict(type='bool', default=False),
    revoked_keys=dict(type='path', no_log=False),
    pin=dict(type='str'),
    source=dict(type='str', choices=list(SOURCES), default='auto'),
    fallback_to_share=dict(type='bool', default=False),
    **REGISTRY_ARGUMENT_SPEC
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


def gpu_choice(gpus):
    """The gpus option -> ('all', None), ('count', N) or ('ids', [IDs]); None when no GPU is asked for."""
    if not gpus:
        return None
    ids = [str(gpu).strip() for gpu in gpus]
    if any(not gpu or ',' in gpu for gpu in ids):
        raise Failure('gpus must be a list of device IDs (e.g. [0, 1] or [GPU-uuid]), [all] or [count=N].')
    if ids == ['all']:
        return 'all', None
    counts = [gpu for gpu in ids if gpu.startswith('count=')]
    if counts:
        number = counts[0][len('count='):]
        if len(ids) != 1 or not (number.isascii() and number.isdigit()) or int(number) < 1:
            raise Failure('gpus %s: count=N stands alone, with N a whole number of 1 or more (e.g. [count=2]).' % ids)
        return 'count', int(number)
    if 'all' in ids or len(set(ids)) != len(ids) or any(not _GPU_ID.fullmatch(gpu) for gpu in ids):
        raise Failure('gpus %s must be distinct device IDs (letters, digits, "-", "_", ":" or "."), or [all] alone.' % ids)
    return 'ids', ids


def check_declared_gpus(choice, available):
    """Refuse a GPU choice the runner cannot meet: available is the runner's declared GPU IDs (kohakuriver_gpus), or
    None when it declared nothing to check against."""
    if choice is None or available is None:
        return
    declared = [str(gpu).strip() for gpu in available]
    if any(not _GPU_ID.fullmatch(gpu) for gpu in declared):
        raise Failure('available_gpus %r must be GPU IDs (the inventory\'s kohakuriver_gpus, e.g. [0, 1]).' % (declared,))
    kind, value = choice
    if not declared:
        raise Failure('gpus %s asked of a runner that declares no GPUs (available_gpus, the inventory\'s kohakuriver_gpus, '
                      'is empty): run it on a runner with GPUs or leave gpus out.' % _gpu_text(choice))
    if kind == 'count' and value > len(declared):
        raise Failure('gpus count=%d is more than the %d GPUs this runner declares (%s).' % (value, len(declared), ', '.join(declared)))
    missing = [gpu for gpu in value if gpu not in declared] if kind == 'ids' else []
    if missing:
        raise Failure('gpus %s: this runner declares GPUs %s only (available_gpus, the inventory\'s kohakuriver_gpus).'
                      % (', '.join(missing), ', '.join(declared)))


def _gpu_text(choice):
    kind, value = choice
    return {'all': 'all', 'count': 'count=%s' % value}.get(kind) or ','.join(value or [])


def gpu_requests(gpus, available=None):
    """The gpus option -> the DeviceRequests of `docker run --gpus` (all, count=N, device=ID,...), checked against the
    runner's declared GPUs when they are given."""
    choice = gpu_choice(gpus)
    check_declared_gpus(choice, available)
    if choice is None:
        return None
    kind, value = choice
    if kind == 'all':
        return [dict(driver='', count=-1, capabilities=[['gpu']])]
    if kind == 'count':
        return [dict(driver='', count=value, capabilities=[['gpu']])]
    return [dict(driver='', count=0, device_ids=value, capabilities=[['gpu']])]


def daemon_refusal_hint(text):
    """What to do about a daemon's refusal of a GPU request or runtime (text: its one line), or ''."""
    if 'could not select device driver' in text:
        return (' - this runner\'s Docker cannot run GPU containers: install the NVIDIA Container Toolkit and configure '
                'Docker for it (nvidia-ctk runtime configure), or run on a runner with GPUs; the kohakuriver.docker.runner '
                'role checks runners that declare kohakuriver_gpus.')
    if 'unknown runtime' in text.lower() or 'invalid runtime name' in text:  # Docker 20.10, and later engines
        return ' - `docker info` on the runner lists the runtimes its Docker knows (Runtimes).'
    return ''


def gpus_of(device_requests):
    """The gpus option a container's HostConfig.DeviceRequests stand for (sorted), for drift."""
    gpus = []
    for request in device_requests or []:
        count = request.get('Count')
        if count == -1:
            gpus.append('all')
        elif count:
            gpus.append('count=%d' % count)
        gpus += [str(gpu) for gpu in request.get('DeviceIDs') or []]
    return sorted(gpus)


def shm_bytes(value):
    """shm_size as bytes (None stays None): Docker's sizes, greater than 0."""
    if value is None:
        return None
    try:
        size = int(parse_bytes(str(value).strip()))
    except (DockerException, ValueError, TypeError, IndexError, OverflowError):
        size = 0
    if size <= 0:
        raise Failure('shm_size %r is not a size greater than 0: use bytes or a number with b, k, m or g, like 8g.' % (value,))
    return size


def ipc_mode_of(value):
    if value is None:
        return None
    value = str(value)
    if value in _IPC_MODES or (value.startswith('container:') and _NAME.fullmatch(value[len('container:'):])):
        return value
    raise Failure('ipc_mode %r is not one of private, shareable, host, none or container:<name or ID>.' % (value,))


def parse_ulimit(spec):
    """'name:soft[:hard]' (like docker run --ulimit nofile=1024:2048, and community.docker's ulimits) -> a Docker
    Ulimit; -1 is unlimited."""
    parts = str(spec).split(':')
    if len(parts) not in (2, 3) or parts[0] not in _ULIMITS or not all(_LIMIT.fullmatch(part) for part in parts[1:]):
        raise Failure('ulimits entry %r is not "name:soft" or "name:soft:hard" with name one of %s and whole numbers '
                      '(-1 for unlimited), e.g. memlock:-1:-1 or nofile:65536:65536.' % (spec, ', '.join(sorted(_ULIMITS))))
    soft, hard = int(parts[1]), int(parts[-1])
    if hard != -1 and (soft == -1 or soft > hard):
        raise Failure('ulimits entry %r: the soft limit is above the hard limit.' % (spec,))
    return dict(Name=parts[0], Soft=soft, Hard=hard)


def parse_device(spec):
    """'host_path[:container_path[:permissions]]' (docker run --device) -> a Docker device mapping."""
    parts = str(spec).split(':')
    permissions = parts[2] if len(parts) == 3 else 'rwm'
    if not 1 <= len(parts) <= 3 or not permissions or set(permissions) - set('rwm'):
        raise Failure('devices entry %r is not "/dev/host[:/dev/in-container[:rwm]]" (permissions from r, w, m).' % (spec,))
    host = absolute_clean(parts[0], 'Device')
    inside = absolute_clean(parts[1], 'Device target') if len(parts) > 1 else host
    return dict(PathOnHost=host, PathInContainer=inside, CgroupPermissions=permissions)


def capability_names(names):
    """Linux capabilities to add (SYS_PTRACE, CAP_IPC_LOCK, ALL), upper case without the CAP_ prefix."""
    if not names:
        return None
    wanted = []
    for name in names:
        text = str(name).strip().upper()
        text = text[len('CAP_'):] if text.startswith('CAP_') else text
        if not _CAPABILITY.fullmatch(text):
            raise Failure('capabilities entry %r is not a Linux capability name such as SYS_PTRACE, IPC_LOCK or ALL.' % (name,))
        if text not in wanted:
            wanted.append(text)
    return wanted


def runtime_name(value):
    if value is None:
        return None
    if not _NAME.fullmatch(str(value)):
        raise Failure('runtime %r is not a runtime name such as runc or nvidia.' % (value,))
    return value


def user_of(value):
    """user, like docker run --user: name or UID, optionally :group or :GID."""
    if value is None or value == '':
        return None
    if not _USER.fullmatch(str(value)):
        raise Failure('user %r is not "name", "uid", "name:group" or "uid:gid" (no spaces).' % (value,))
    return str(value)


def read_env_file(path):
    """KEY=VALUE lines of an env file on the node running the module (docker run --env-file): blank lines and lines
    starting with # are skipped; the value is the rest of the line, as is (no quotes removed)."""
    if path is None:
        return {}
    try:
        with open(path, 'rb') as handle:
            data = handle.read(_ENV_FILE_LIMIT + 1)
    except (IOError, OSError) as exc:
        raise Failure('env_file %s cannot be read: %s' % (path, exc.strerror or exc))
    if len(data) > _ENV_FILE_LIMIT:
        raise Failure('env_file %s is larger than %d bytes: is it the right file?' % (path, _ENV_FILE_LIMIT))
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError:
        raise Failure('env_file %s is not UTF-8 text.' % path)
    pairs = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        key, equals, value = line.partition('=')
        if not equals or not _ENV_KEY.match(key) or key != key.strip():
            raise Failure('env_file %s line %d is not KEY=VALUE (a name without spaces, "=", then the value).' % (path, number))
        pairs[key] = value
    return pairs


def environment_list(environment, env_file=None):
    """KEY=VALUE strings of an env_file (read here) and the environment dict, which wins for a name in both."""
    merged = dict(read_env_file(env_file))
    merged.update(environment or {})
    pairs = []
    for key, value in sorted(merged.items()):
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
        self.device_requests = gpu_requests(params.get('gpus'), params.get('available_gpus'))
        self.shm_size = shm_bytes(params.get('shm_size'))
        self.ipc_mode = ipc_mode_of(params.get('ipc_mode'))
        self.ulimits = [parse_ulimit(spec) for spec in params.get('ulimits') or []] or None
        if self.ulimits and len(set(limit['Name'] for limit in self.ulimits)) != len(self.ulimits):
            raise Failure('ulimits names a limit twice: give each of %s once.' % sorted(set(limit['Name'] for limit in self.ulimits)))
        self.devices = [parse_device(spec) for spec in params.get('devices') or []] or None
        self.capabilities = capability_names(params.get('capabilities'))
        self.runtime = runtime_name(params.get('runtime'))
        self.user = user_of(params.get('user'))
        self.environment = environment_list(params.get('environment'), params.get('env_file'))
        self.privileged = bool(params.get('privileged'))
        self.network = params.get('network') or None
        self.sync = params.get('sync', True)
        self.allow_stale = params.get('allow_stale', False)
        self.signing = SigningPolicy.of(params)
        self.pin = params.get('pin')
        if self.pin is not None:
            pin_timestamp(self.env, self.pin)
        self.sync_source = SyncSource(params)

    @property
    def image(self):
        return image_reference(self.env)

    def host_config(self, client, **extra):
        """The HostConfig of these options; extra: more create_host_config arguments (ports, restart policy)."""
        return client.api.create_host_config(
            mounts=self.mounts, nano_cpus=self.nano_cpus, mem_limit=self.memory, device_requests=self.device_requests,
            privileged=self.privileged, network_mode=self.network, shm_size=self.shm_size, ipc_mode=self.ipc_mode,
            ulimits=self.ulimits, devices=self.devices, cap_add=self.capabilities, runtime=self.runtime, **extra
        )

    def requested_view(self, params):
        """The ML options the parameters name, in the shape of run_view_of(), for drift (what is not asked is not
        compared)."""
        view = dict(shm_size=self.shm_size, ipc_mode=self.ipc_mode, runtime=self.runtime,
                    capabilities=sorted(self.capabilities) if self.capabilities else None,
                    devices=sorted(_device_text(device) for device in self.devices or []) if self.devices else None,
                    ulimits=sorted(_ulimit_text(limit) for limit in self.ulimits or []) if self.ulimits else None)
        return dict((key, value) for key, value in view.items() if value is not None and params.get(key) is not None)


def run_view_of(host):
    """The ML options a created container has (its inspect's HostConfig), as requested_view() names them."""
    return dict(
        shm_size=host.get('ShmSize'), ipc_mode=host.get('IpcMode'), runtime=host.get('Runtime'),
        capabilities=sorted(name[len('CAP_'):] if name.upper().startswith('CAP_') else name for name in host.get('CapAdd') or []),
        devices=sorted('%s:%s:%s' % (device.get('PathOnHost'), device.get('PathInContainer'), device.get('CgroupPermissions'))
                       for device in host.get('Devices') or []),
        ulimits=sorted(_ulimit_text(dict(Name=limit.get('Name'), Soft=limit.get('Soft'), Hard=limit.get('Hard')))
                       for limit in host.get('Ulimits') or []),
    )


def _device_text(device):
    return '%s:%s:%s' % (device['PathOnHost'], device['PathInContainer'], device['CgroupPermissions'])


def _ulimit_text(limit):
    return '%s:%s:%s' % (limit['Name'], limit['Soft'], limit['Hard'])
