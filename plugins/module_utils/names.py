# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names shared with KohakuRiver (environment names, containers, images, tarballs and labels) and the defaults the
modules share. Standard library only: the SDK-free daemon probe imports it."""

from __future__ import annotations

import re

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

ENV_NAME_MAX_LENGTH = 64
ENV_NAME_RULE = (
    'lowercase letters and digits, optionally separated by single ".", "_", "__" or runs of "-", '
    'starting and ending with a letter or digit, at most %d characters' % ENV_NAME_MAX_LENGTH
)
_ENV_NAME = re.compile(r'[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*')
_ANY_TARBALL = re.compile(r'(?P<env>[a-z0-9][a-z0-9_.-]*)-(?P<timestamp>[0-9]+)\.tar')

CONTAINER_PREFIX = 'kohakuriver-env-'  # an environment container: kohakuriver-env-<env>
VPS_CONTAINER_PREFIX = 'kohakuriver-vps-'
TASK_CONTAINER_PREFIX = 'kohakuriver-task-'
IMAGE_NAMESPACE = 'kohakuriver'
BASE_TAG = 'base'
REGISTRY_NAMESPACE = 'kohakuriver'  # <registry url>/<namespace>/<env>:<timestamp> and :latest
REGISTRY_LATEST_TAG = 'latest'

# The entrypoint of every environment container: keeps any image with a POSIX shell alive (busybox's sleep has no "infinity"); the trap makes `docker stop`
# end it at once, and the backgrounded sleep lets the trap run while `wait` blocks.
KEEP_ALIVE = ['sh', '-c', "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]
SNAPSHOT_TAG_PREFIX = 'vps-'
TARBALL_FOLDER = 'kohakuriver-containers'
DEFAULT_SHARED_DIR = '/mnt/cluster-share'
DEFAULT_TARBALL_DIR = DEFAULT_SHARED_DIR + '/' + TARBALL_FOLDER
DEFAULT_STATE_DIR = '/var/lib/kohakuriver-docker'
DEFAULT_STOP_TIMEOUT = 10  # seconds between SIGTERM and SIGKILL when a container is stopped, as docker stop

DEFAULT_DOCKER_HOST = 'unix:///var/run/docker.sock'
DEFAULT_TIMEOUT = 60
# The OpenSSH signature namespace (ssh-keygen -Y sign -n) of sidecar signatures: a key signs nothing else under it.
SIGNATURE_NAMESPACE = 'kohakuriver.docker-sidecar@v1'

LABEL_MANAGED = 'io.kohakuriver.docker.managed'
LABEL_ENV = 'io.kohakuriver.docker.env'
LABEL_TIMESTAMP = 'io.kohakuriver.docker.timestamp'
# On an environment container: the image it was declared with (reference and ID), which a continued container
# (recreated from its own commit, continuation.py) no longer runs; container drift compares against these.
LABEL_BASE_IMAGE = 'io.kohakuriver.docker.base_image'
LABEL_BASE_IMAGE_ID = 'io.kohakuriver.docker.base_image_id'
LABEL_TASK = 'io.kohakuriver.docker.task'
LABEL_TASK_OWNER = 'io.kohakuriver.docker.task.owner'
LABEL_TASK_DEADLINE = 'io.kohakuriver.docker.task.deadline'
LABEL_VPS = 'io.kohakuriver.docker.vps'
LABEL_VPS_PORT = 'io.kohakuriver.docker.vps.port'
LABEL_VPS_BIND = 'io.kohakuriver.docker.vps.bind_address'
LABEL_VPS_HOST_KEY = 'io.kohakuriver.docker.vps.host_key'


def validate_env_name(name, option='name'):
    """Return name if it is a valid environment name, else raise Failure quoting the rule."""
    if not isinstance(name, str) or len(name) > ENV_NAME_MAX_LENGTH or not _ENV_NAME.fullmatch(name):
        raise Failure('%s %r is not a valid environment name: use %s.' % (option, name, ENV_NAME_RULE))
    return name


def container_name(env):
    """The name of env's environment container."""
    return CONTAINER_PREFIX + env


def vps_container_name(session):
    return VPS_CONTAINER_PREFIX + session


def task_container_name(task_id):
    return TASK_CONTAINER_PREFIX + task_id


def env_of_container(name):
    """The environment a container name belongs to, or None when it is not an environment container."""
    name = name.lstrip('/')
    if name.startswith(CONTAINER_PREFIX) and len(name) > len(CONTAINER_PREFIX):
        return name[len(CONTAINER_PREFIX):]
    return None


def image_repository(env):
    return '%s/%s' % (IMAGE_NAMESPACE, env)


def image_reference(env, tag=BASE_TAG):
    return '%s:%s' % (image_repository(env), tag)


def registry_repository(url, namespace, env):
    """<url>/<namespace>/<env>: an environment's repository in a registry (tags <timestamp> and latest)."""
    return '%s/%s/%s' % (url, namespace, env)


def is_snapshot_tag(reference):
    """Whether an image reference is a VPS session snapshot (kohakuriver/<env>:vps-...), which is user data."""
    return reference.rpartition(':')[2].startswith(SNAPSHOT_TAG_PREFIX)


def tarball_name(env, timestamp):
    return '%s-%d.tar' % (env, timestamp)


def parse_tarball_name(file_name, env=None):
    """Split '<env>-<unix seconds>.tar' into (env, timestamp); None when the name is not a tarball name.

    Without env the longest prefix wins, so 'env-2-1700000000.tar' is environment 'env-2'.
    With env only that environment's tarballs match, so 'env' never claims 'env-2-...'.
    """
    match = _ANY_TARBALL.fullmatch(file_name) if isinstance(file_name, str) else None
    if not match:
        return None
    found_env, timestamp = match.group('env'), int(match.group('timestamp'))
    if env is not None and found_env != env:
        return None
    if not _ENV_NAME.fullmatch(found_env):
        return None
    return found_env, timestamp
