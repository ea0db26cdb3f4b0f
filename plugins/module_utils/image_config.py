# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The config an environment image gets: its base image's runtime behaviour, never the environment container's.

An environment container runs our keep-alive loop as its Entrypoint and carries the labels that make it an
environment container. A commit must give the image the base image's Entrypoint, Cmd and StopSignal instead, and
labels under which a container made from the image by anyone is not an environment container.

Docker's commit (moby daemon/commit.go, the same in 20.10 and 26) starts from the request's config, applies the
changes, then fills every empty field from the container's config. So an Entrypoint can only be cleared by sending
an empty list, and a container label can only be overridden, never removed. committed_config() predicts what the
daemon makes, so that the container's side and the image's side of every comparison are computed alike.

Pure logic: no daemon calls.
"""

from __future__ import annotations

import copy

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import KEEP_ALIVE, LABEL_ENV, LABEL_MANAGED, LABEL_TIMESTAMP

# What a commit carries from the container's config and a user can change (the timestamp label is ours).
RUNTIME_CONFIG_KEYS = ('Cmd', 'Entrypoint', 'Env', 'ExposedPorts', 'Healthcheck', 'Labels', 'OnBuild', 'Shell',
                       'StopSignal', 'User', 'Volumes', 'WorkingDir')
# A commit cannot remove the container's managed label, so the image overrides it: a container made from the image
# without our create call (docker run, KohakuRiver's runner) is then not taken for an environment container.
IMAGE_MANAGED_VALUE = 'false'


def base_runtime(base_config):
    """(Entrypoint, Cmd, StopSignal) of the base image; an older release's keep-alive Entrypoint counts as none."""
    base_config = base_config or {}
    entrypoint = base_config.get('Entrypoint') or None
    if entrypoint == KEEP_ALIVE:
        entrypoint = None
    return entrypoint, base_config.get('Cmd') or None, base_config.get('StopSignal') or None


def image_labels(container_labels, env, timestamp=None):
    """The container's labels (the base image's and the user's) with ours for an image: env, timestamp, not managed."""
    labels = dict(container_labels or {})
    labels[LABEL_MANAGED] = IMAGE_MANAGED_VALUE
    labels[LABEL_ENV] = env
    if timestamp is not None:
        labels[LABEL_TIMESTAMP] = str(timestamp)
    else:
        labels.pop(LABEL_TIMESTAMP, None)
    return labels


def commit_config(container_config, base_config, env, timestamp=None):
    """The `conf` of the commit request: the container's config with the base image's runtime and our image labels.

    Starting from the container's whole config keeps what Docker's merge would not fill in (OnBuild, Shell, ...).
    """
    conf = copy.deepcopy(container_config or {})
    entrypoint, cmd, stop_signal = base_runtime(base_config)
    # [] and not None: the daemon fills a null Entrypoint from the container (our keep-alive), not an empty one.
    conf['Entrypoint'] = list(entrypoint) if entrypoint else []
    conf['Cmd'] = list(cmd) if cmd else None
    conf['StopSignal'] = stop_signal
    conf['Labels'] = image_labels(conf.get('Labels'), env, timestamp)
    return conf


def committed_config(conf, container_config):
    """The image config Docker's commit makes of conf for a container with container_config (its merge step).

    docker-py drops the null fields of conf before sending it, so they arrive empty.
    """
    container_config = container_config or {}
    result = dict((key, value) for key, value in (conf or {}).items() if value is not None)
    for key in ('User', 'WorkingDir', 'StopSignal', 'Healthcheck'):
        if not result.get(key):
            result[key] = container_config.get(key)
    names = set(item.partition('=')[0] for item in result.get('Env') or [])
    missing = [item for item in container_config.get('Env') or [] if item.partition('=')[0] not in names]
    result['Env'] = list(result.get('Env') or []) + missing
    for key in ('ExposedPorts', 'Volumes', 'Labels'):
        merged = dict(container_config.get(key) or {})
        merged.update(result.get(key) or {})
        result[key] = merged
    if not result.get('Entrypoint'):
        if not result.get('Cmd'):
            result['Cmd'] = container_config.get('Cmd')
        if result.get('Entrypoint') is None:
            result['Entrypoint'] = container_config.get('Entrypoint')
    return result


def runtime_config(config, env):
    """The user-visible config of an image, normalized; our timestamp label left out, our env label in."""
    config = config or {}
    result = {}
    for key in RUNTIME_CONFIG_KEYS:
        value = config.get(key)
        if key == 'Labels':
            value = dict(value or {})
            value.pop(LABEL_TIMESTAMP, None)
            value[LABEL_ENV] = env
        result[key] = value or None
    return result


def expected_runtime_config(container_config, base_config, env):
    """runtime_config() of the image a commit of this container would make now (timestamp aside)."""
    return runtime_config(committed_config(commit_config(container_config, base_config, env), container_config), env)
