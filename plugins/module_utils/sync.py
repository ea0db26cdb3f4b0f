# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runner-side sync: is `kohakuriver/<env>:base` the newest tarball's image, and if not, load, verify and tag it.

Up to date costs one folder listing, at most one sidecar read and one image inspect; the tarball is only read
when a load is needed. A load sends only the layers the daemon lacks (a thin archive, see loadstream.py) when it
holds the bottom ones, and the whole tarball otherwise or when the daemon refuses the thin archive. Loads run under
the environment's lock and tag `:base` only after the loaded image ID checks out, so the previous `:base` keeps
running tasks until then.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import DOCKER_ERRORS, APIError, explain, inspect_or_none
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.layers import held_chain_ids, held_layer_count
from ansible_collections.kohakuriver.docker.plugins.module_utils.loadstream import ImageArchive
from ansible_collections.kohakuriver.docker.plugins.module_utils.locks import env_lock
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    BASE_TAG, LABEL_TIMESTAMP, image_reference, image_repository, is_snapshot_tag,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.store import newest_tarball

NOTHING, TAG, LOAD = 'none', 'tag', 'load'
OWN_IMAGES_ASKED = 4
_LOADED_ID = re.compile(r'Loaded image ID: (sha256:[0-9a-f]{64})')


def image_timestamp(image):
    """The tarball timestamp an inspected image carries in its label, or None."""
    labels = (image.get('Config') or {}).get('Labels') or {}
    value = labels.get(LABEL_TIMESTAMP)
    return int(value) if value and value.isdigit() else None


def carries_timestamp(image, env, timestamp):
    """True when the image is labelled with timestamp or tagged kohakuriver/<env>:<timestamp>."""
    return image_timestamp(image) == timestamp or image_reference(env, timestamp) in (image.get('RepoTags') or [])


def is_current(base, env, timestamp, expected_id=None):
    """Is the local :base image (inspect dict or None) the tarball with this timestamp (and sidecar image ID)?"""
    if base is None or not carries_timestamp(base, env, timestamp):
        return False
    return expected_id is None or base.get('Id') == expected_id


def refresh_action(candidate, expected_id=None):
    """TAG when the tarball's image is already on the daemon (candidate: its inspect dict or None), else LOAD."""
    if candidate is None or (expected_id is not None and candidate.get('Id') != expected_id):
        return LOAD
    return TAG


def loaded_image_id(events):
    """The image ID the load endpoint's JSON messages report (None if none); raise ValueError on an error message."""
    found = None
    for event in events:
        if not isinstance(event, dict):
            continue
        error = event.get('error') or (event.get('errorDetail') or {}).get('message')
        if error or (event.get('message') and not event.get('stream')):
            raise ValueError(' '.join(str(error or event['message']).split()))
        match = _LOADED_ID.search(event.get('stream') or '')
        if match:
            found = match.group(1)
    return found


class Survey(object):
    """What the folder and the daemon say about one environment, and what to do about it."""

    def __init__(self, env, tarball=None, sidecar=None, base=None, action=NOTHING, candidate=None, stale=False,
                 warnings=None):
        self.env = env
        self.tarball = tarball
        self.sidecar = sidecar
        self.base = base
        self.action = action
        self.candidate = candidate
        self.stale = stale
        self.warnings = warnings or []

    @property
    def expected_id(self):
        return self.sidecar.get('image_id') if self.sidecar else None


def survey(client, env, tarball_dir, allow_stale=False):
    """Compare the newest tarball of env with the local :base image: one listing, one sidecar read, one inspect."""
    try:
        tarball = newest_tarball(tarball_dir, env)
    except Failure as failure:
        base = inspect_or_none(client, image_reference(env))
        if not allow_stale:
            raise Failure('%s Set allow_stale: true to run on the local image when the folder is unreachable.'
                          % failure.msg)
        if base is None:
            raise Failure('%s No local image %s either, so there is nothing to run.' % (failure.msg, image_reference(env)))
        return Survey(env, base=base, stale=True,
                      warnings=['%s Using the local image %s (allow_stale).' % (failure.msg, image_reference(env))])
    sidecar = tarball.sidecar if tarball else None
    if sidecar is not None and sidecar.get('file') not in (None, tarball.file_name):
        raise Failure('The sidecar %s describes %s, not %s; remove it or the tarball.'
                      % (tarball.sidecar_path, sidecar.get('file'), tarball.file_name))
    base = inspect_or_none(client, image_reference(env))
    if tarball is None:
        if base is None:
            raise Failure('No tarball of environment %s in %s and no local image %s: package the environment on the '
                          'Host first (kohakuriver.docker.tarball).' % (env, tarball_dir, image_reference(env)))
        return Survey(env, base=base,
                      warnings=['No tarball of environment %s in %s; keeping the local image %s.'
                                % (env, tarball_dir, image_reference(env))])
    found = Survey(env, tarball, sidecar, base)
    if not is_current(base, env, tarball.timestamp, found.expected_id):
        found.candidate = inspect_or_none(client, found.expected_id or image_reference(env, tarball.timestamp))
        found.action = refresh_action(found.candidate, found.expected_id)
    return found


def sync_environment(client, env, tarball_dir, state_dir, prune=False, allow_stale=False, check_mode=False,
                     lock_timeout=3600):
    """Make kohakuriver/<env>:base the newest tarball's image; return the result dict of image_sync."""
    started = time.monotonic()
    found = survey(client, env, tarball_dir, allow_stale)
    result = _result(found)
    if found.action != NOTHING and not check_mode:
        _make_dir(state_dir)
        with env_lock(state_dir, env, timeout=lock_timeout) as waited:
            result['lock_wait'] = round(waited, 3)
            found = survey(client, env, tarball_dir, allow_stale)
            result.update(_result(found))
            if found.action != NOTHING:
                previous_id = found.base.get('Id') if found.base else None
                applied = _apply(client, found)
                result['warnings'].extend(applied.pop('warnings', []))
                result.update(applied)
                if prune:
                    result['pruned'] = prune_superseded(client, env, result['image_id'], previous_id)
    result['changed'] = found.action != NOTHING or bool(result['pruned'])
    result['seconds'] = round(time.monotonic() - started, 3)
    return result


def _result(found):
    tarball = found.tarball
    image = found.candidate if found.action == TAG else found.base
    current = found.action == NOTHING
    return dict(
        env=found.env, image=image_reference(found.env), action=found.action,
        tarball=tarball.path if tarball else None, timestamp=tarball.timestamp if tarball else None,
        image_id=(image or {}).get('Id') if found.action != LOAD else found.expected_id,
        previous_image_id=(found.base or {}).get('Id'),
        verified=bool(found.sidecar) and (current or found.action == TAG),
        loaded=False, thin=False, bytes_read=0, bytes_sent=0, layers_sent=0, layers_skipped=0, lock_wait=0.0,
        pruned=[], stale=found.stale, warnings=list(found.warnings),
    )


def _make_dir(path):
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise Failure('Cannot create the state folder %s for locks: %s; set state_dir.' % (path, exc.strerror))


def _apply(client, found):
    if found.action == TAG:
        _tag(client, found.env, found.candidate['Id'], found.tarball.timestamp)
        return dict(image_id=found.candidate['Id'], verified=found.sidecar is not None)
    return load_tarball(client, found.env, found.tarball, found.sidecar, found.base)


def _tag(client, env, image_id, timestamp):
    repository = image_repository(env)
    client.api.tag(image_id, repository, str(timestamp))
    client.api.tag(image_id, repository, BASE_TAG)


class Refused(Failure):
    """The daemon answered the load with an error."""


def load_tarball(client, env, tarball, sidecar, base=None, held=None):
    """Stream tarball into the daemon untagged, check the image ID, then tag it; on failure leave :base alone.

    Only the layers the daemon lacks are sent when it holds the bottom ones (held: the chain IDs it holds, asked from
    the daemon when None); if it refuses that thin archive, the whole tarball is sent.
    """
    archive = ImageArchive(tarball.path, sidecar)
    if held is None:
        held = held_chain_ids(_images_sharing_layers(client, env, base, archive.parent_image))
    held_layers = held_layer_count(archive.diff_ids, held)
    present_before = set(client.api.images(quiet=True, all=True))
    warnings = []
    if held_layers:
        try:
            return _load(client, env, tarball, archive.thin_stream(held_layers), present_before, warnings)
        except Refused as refused:
            warnings.append('%s; loaded the whole tarball instead of the %d of %d layers the daemon seemed to lack.'
                            % (refused.msg, len(archive.diff_ids) - held_layers, len(archive.diff_ids)))
    return _load(client, env, tarball, archive.full_stream(), present_before, warnings)


def _images_sharing_layers(client, env, base, parent_image):
    """Inspect dicts of the images likeliest to hold the new image's bottom layers: the environment's newest images
    and the image its container was created from (named in its config)."""
    images = [base] if base else []
    own = sorted(client.api.images(name=image_repository(env)), key=lambda image: image.get('Created') or 0, reverse=True)
    for listed in own[:OWN_IMAGES_ASKED]:
        if not base or listed['Id'] != base['Id']:
            images.append(inspect_or_none(client, listed['Id']))
    if parent_image:
        try:
            images.append(inspect_or_none(client, parent_image))
        except APIError:
            pass  # a reference this daemon cannot parse only means nothing to reuse
    return images


def _load(client, env, tarball, stream, present_before, warnings):
    started = time.monotonic()
    try:
        loaded_id = loaded_image_id(client.api.load_image(stream, quiet=True))
    except Failure:
        _discard(client, stream.image_id, present_before)
        raise
    except ValueError as exc:
        _discard(client, stream.image_id, present_before)
        raise Refused('The daemon refused %s: %s' % (tarball.path, exc), tarball=tarball.path)
    except APIError as exc:
        _discard(client, stream.image_id, present_before)
        raise Refused('The daemon refused %s: %s' % (tarball.path, explain(exc)), tarball=tarball.path)
    except DOCKER_ERRORS + (OSError,) as exc:
        _discard(client, stream.image_id, present_before)
        raise Failure('Loading %s failed: %s' % (tarball.path, explain(exc)), tarball=tarball.path)
    image_id = loaded_id or stream.image_id
    problem = None
    if not stream.complete:
        problem = 'the daemon answered before the whole archive was sent'
    elif image_id is None:
        problem = 'the daemon did not report the loaded image ID'
    elif image_id != stream.image_id:
        problem = 'the daemon loaded image %s, the archive describes %s' % (image_id, stream.image_id)
    if problem:
        _discard(client, image_id, present_before)
        raise Failure('Cannot load %s: %s.' % (tarball.path, problem), tarball=tarball.path)
    _tag(client, env, image_id, tarball.timestamp)
    if stream.archive.sidecar is None:
        warnings.append('%s has no sidecar: loaded unverified (made by KohakuRiver itself?).' % tarball.path)
    return dict(image_id=image_id, verified=stream.verified, loaded=True, thin=stream.thin, bytes_read=stream.bytes_read,
                bytes_sent=stream.bytes_sent, layers_sent=stream.layers_sent, layers_skipped=stream.layers_skipped,
                load_seconds=round(time.monotonic() - started, 3), warnings=warnings)


def _discard(client, image_id, present_before):
    """Remove an image a failed load left behind: only if it is new, untagged and no container uses it."""
    if not image_id or image_id in present_before:
        return
    image = inspect_or_none(client, image_id)
    if image is None or [tag for tag in image.get('RepoTags') or [] if tag != '<none>:<none>']:
        return
    try:
        client.api.remove_image(image_id)
    except APIError:
        pass


def prune_superseded(client, env, current_id, previous_id=None):
    """Remove kohakuriver/<env> images other than current_id that no container uses; return what went."""
    repository = image_repository(env)
    ours = dict((image['Id'], [tag for tag in image.get('RepoTags') or [] if tag.startswith(repository + ':')])
                for image in client.api.images(name=repository) if image['Id'] != current_id)
    if previous_id and previous_id != current_id and previous_id not in ours:
        ours[previous_id] = []
    if not ours:
        return []
    in_use = set(container.get('ImageID') for container in client.api.containers(all=True))
    pruned = []
    for image_id, tags in sorted(ours.items()):
        if image_id in in_use or any(is_snapshot_tag(tag) for tag in tags):
            continue
        try:
            if tags:
                for tag in tags:
                    client.api.remove_image(tag)
            else:
                image = inspect_or_none(client, image_id)
                if image is None or [tag for tag in image.get('RepoTags') or [] if tag != '<none>:<none>']:
                    continue
                client.api.remove_image(image_id)
        except APIError as exc:
            if getattr(exc, 'status_code', None) in (404, 409):
                continue
            raise
        pruned.append(dict(id=image_id, tags=tags))
    return pruned
