# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Is the newest tarball of an environment still current? The decisions, from facts the caller gathered.

Cheap facts first (reasons_to_package: the container, its config, the tarball's size, its changed paths); when they
all agree, a trial commit decides (same_content: its layer diff IDs and user-visible config against the sidecar).
Committing an unchanged container gives the same diff IDs again (Docker's layer tars are reproducible), so the
comparison is exact.

Pure logic: no daemon calls (the changed paths come through a callable, asked only when the answer depends on them).
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.kohakuriver.docker.plugins.module_utils.image_config import expected_runtime_config, runtime_config


def changes_digest(changes):
    """A digest of a container's changed paths (GET /containers/{id}/changes) for check mode's prediction."""
    entries = sorted((change['Path'], change['Kind']) for change in changes or [])
    return hashlib.sha256(json.dumps(entries).encode('utf-8')).hexdigest()


def same_content(image, sidecar, env):
    """True when an inspected image has the layers and user-visible config the sidecar records."""
    return bool(sidecar) and sidecar.get('layers') == (image.get('RootFS') or {}).get('Layers') \
        and sidecar.get('runtime_config') == runtime_config(image.get('Config'), env)


def reasons_to_package(force, newest, container, changes, env, base_config):
    """Why a new tarball is needed, from cheap facts only; empty when the newest tarball may still be current.

    changes() returns the container's changed paths; it is called only when the answer depends on them.
    base_config: the Config of the image the container was created from (what the commit takes from it).
    """
    if force:
        return ['force is set']
    if newest is None:
        return ['there is no tarball of %s yet' % env]
    sidecar = newest.sidecar
    if sidecar is None:
        return ['the newest tarball %s has no sidecar (made by KohakuRiver?)' % newest.file_name]
    reasons = []
    if (sidecar.get('source') or {}).get('container_id') != container['Id']:
        reasons.append('the container is not the one %s was made from' % newest.file_name)
    if sidecar.get('runtime_config') != expected_runtime_config(container.get('Config'), base_config, env):
        reasons.append('the container configuration differs from %s' % newest.file_name)
    try:
        if os.stat(newest.path).st_size != sidecar.get('size'):
            reasons.append('%s does not have the size its sidecar records' % newest.file_name)
    except OSError:
        reasons.append('%s disappeared' % newest.file_name)
    if not reasons and sidecar.get('container_changes') != changes_digest(changes()):
        reasons.append('files were added or deleted in the container since %s' % newest.file_name)
    return reasons
