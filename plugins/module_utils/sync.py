# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runner-side sync: is `kohakuriver/<env>:base` the newest tarball's image, and if not, load, verify and tag it.

Up to date costs one folder listing, at most one sidecar read, one image inspect, made without the Docker SDK where
the daemon is local (daemon.py), and, with a sidecar, a check that the tarball holds the image the sidecar names:
its tar headers (seeking over the data), manifest.json and config, never its layers. An image ID is the sha256 of
the config, which lists the layers' diff IDs, so a daemon image with the ID of the tarball's config is the tarball's
image. The same check comes before a re-tag; a load checks every byte it sends. Tagging and loading (syncload.py)
run under the environment's lock, after a second look at the folder and the daemon.
"""

from __future__ import annotations

import os
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import matches, sidecar_image_ids
from ansible_collections.kohakuriver.docker.plugins.module_utils.locks import env_lock
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import LABEL_TIMESTAMP, image_reference, validate_env_name
from ansible_collections.kohakuriver.docker.plugins.module_utils.progress import Progress
from ansible_collections.kohakuriver.docker.plugins.module_utils.sidecar import require_complete
from ansible_collections.kohakuriver.docker.plugins.module_utils.signing import SigningPolicy, verified_sidecar
from ansible_collections.kohakuriver.docker.plugins.module_utils.store import (
    chosen_tarball, list_tarballs, pin_timestamp, refuse_link_out_of, tarball_folder,
)

NOTHING, TAG, LOAD = 'none', 'tag', 'load'


def image_timestamp(image):
    """The tarball timestamp an inspected image carries in its label, or None."""
    labels = (image.get('Config') or {}).get('Labels') or {}
    value = labels.get(LABEL_TIMESTAMP)
    return int(value) if value and value.isdigit() else None


def carries_timestamp(image, env, timestamp):
    """True when the image is labelled with timestamp or tagged kohakuriver/<env>:<timestamp>."""
    return image_timestamp(image) == timestamp or image_reference(env, timestamp) in (image.get('RepoTags') or [])


def is_current(base, env, timestamp, expected_id=None):
    """Is the local :base image (inspect dict or None) the tarball with this timestamp (and sidecar image ID: one, or
    the tuple of IDs it may have on either image store, image_identity.sidecar_image_ids)?"""
    if base is None or not carries_timestamp(base, env, timestamp):
        return False
    return matches(base, expected_id)


def refresh_action(candidate, expected_id=None):
    """TAG when the tarball's image is already on the daemon (candidate: its inspect dict or None), else LOAD."""
    return TAG if matches(candidate, expected_id) else LOAD


def find_candidate(daemon, env, timestamp, expected_ids):
    """The tarball's image if the daemon has it: inspected by each ID it may have (config digest first), else by tag."""
    for image_id in expected_ids:
        found = daemon.inspect_image(image_id)
        if found is not None:
            return found
    return None if expected_ids else daemon.inspect_image(image_reference(env, timestamp))


class Survey(object):
    """What the folder and the daemon say about one environment, and what to do about it."""

    def __init__(self, env, tarball=None, sidecar=None, base=None, action=NOTHING, candidate=None, stale=False,
                 warnings=None, signed_by=None):
        self.env = env
        self.signed_by = signed_by
        self.tarball = tarball
        self.sidecar = sidecar
        self.base = base
        self.action = action
        self.candidate = candidate
        self.stale = stale
        self.warnings = warnings or []

    @property
    def expected_id(self):
        return self.sidecar.image_id if self.sidecar is not None else None

    @property
    def expected_ids(self):
        """The IDs the sidecar's image may have on this daemon's image store (image_identity); None without a sidecar."""
        return sidecar_image_ids(self.sidecar) or None


def survey(daemon, env, tarball_dir, allow_stale=False, signing=None, pin=None):
    """Compare the newest tarball of env (the pinned one, given a pin) with the local :base image: one listing, one
    sidecar read, one inspect.

    signing: a SigningPolicy; the sidecar's signature is then checked before anything the sidecar says is used.
    """
    try:
        kept = list_tarballs(tarball_dir, env)
    except Failure as failure:
        base = daemon.inspect_image(image_reference(env))
        if pin is not None and base is not None and not carries_timestamp(base, env, pin_timestamp(env, pin)):
            raise Failure('%s The local image %s is not the pinned version %s either.' % (failure.msg, image_reference(env), pin))
        if not allow_stale:
            raise Failure('%s Set allow_stale: true to run on the local image when the folder is unreachable.'
                          % failure.msg)
        if base is None:
            raise Failure('%s No local image %s either, so there is nothing to run.' % (failure.msg, image_reference(env)))
        return Survey(env, base=base, stale=True,
                      warnings=['%s Using the local image %s (allow_stale).' % (failure.msg, image_reference(env))])
    tarball = chosen_tarball(kept, tarball_dir, env, pin)
    if tarball is not None:
        refuse_link_out_of(tarball_dir, tarball.path, 'load it')
    signed_by = _check_signature(tarball, signing)
    sidecar = tarball.sidecar if tarball else None
    if sidecar is not None:
        require_complete(sidecar, tarball.sidecar_path)
        if sidecar.file not in (None, tarball.file_name):
            raise Failure('The sidecar %s describes %s, not %s; remove it or the tarball.'
                          % (tarball.sidecar_path, sidecar.file, tarball.file_name))
    base = daemon.inspect_image(image_reference(env))
    if tarball is None:
        if base is None:
            raise Failure('No tarball of environment %s in %s and no local image %s: package the environment on the '
                          'Host first (kohakuriver.docker.tarball).' % (env, tarball_dir, image_reference(env)))
        return Survey(env, base=base,
                      warnings=['No tarball of environment %s in %s; keeping the local image %s.'
                                % (env, tarball_dir, image_reference(env))])
    found = Survey(env, tarball, sidecar, base, signed_by=signed_by)
    if signing is not None and signed_by is None:
        found.warnings.append('%s has no signature; it was trusted without one (set require_signature: true to refuse '
                              'unsigned tarballs).' % tarball.path)
    if not is_current(base, env, tarball.timestamp, found.expected_ids):
        found.candidate = find_candidate(daemon, env, tarball.timestamp, found.expected_ids or ())
        found.action = refresh_action(found.candidate, found.expected_ids)
    if sidecar is not None and found.action != LOAD:
        confirm_tarball_holds(tarball, sidecar, image_reference(env))
    return found


def _check_signature(tarball, signing):
    """signed_by of tarball's sidecar under signing (None: nothing checked); the checked sidecar becomes the tarball's."""
    if tarball is None or signing is None:
        return None
    sidecar, signed_by = verified_sidecar(tarball.path, signing)
    tarball.use_sidecar(sidecar)
    return signed_by


def confirm_tarball_holds(tarball, sidecar, keeping):
    """Raise a Failure naming both files unless the tarball holds the image its sidecar describes: the same size,
    members where the sidecar lists them, manifest.json and config with the sidecar's sha256s, the config (the image
    ID) and its layers' diff IDs those of the sidecar. Reads the tar headers and the two small members only."""
    from ansible_collections.kohakuriver.docker.plugins.module_utils.image_archive import ImageArchive
    try:
        ImageArchive(tarball.path, sidecar)
    except Failure as failure:
        raise Failure('The tarball %s does not hold what its sidecar %s says (%s); nothing was changed, %s stays as it '
                      'was. Package the environment again, or remove the sidecar to treat the tarball as unverified.'
                      % (tarball.path, tarball.sidecar_path, getattr(failure, 'cause', failure.msg), keeping),
                      tarball=tarball.path)


class SyncRequest(object):
    """image_sync's parameters, validated: env (the name), tarball_dir, state_dir, prune, allow_stale, lock_timeout,
    signing (a SigningPolicy from allowed_signers, require_signature and revoked_keys, or None), pin."""

    def __init__(self, params):
        self.env = validate_env_name(params['name'])
        self.pin = params.get('pin')
        if self.pin is not None:
            pin_timestamp(self.env, self.pin)
        self.tarball_dir = tarball_folder(params['tarball_dir'])
        self.state_dir = params['state_dir']
        self.prune = params['prune']
        self.allow_stale = params['allow_stale']
        self.lock_timeout = params['lock_timeout']
        self.signing = SigningPolicy.of(params)
        self.progress_file = params.get('progress_file')


def sync(daemon, request, check_mode=False):
    """image_sync: sync_environment for a SyncRequest."""
    return sync_environment(daemon, request.env, request.tarball_dir, request.state_dir, prune=request.prune,
                            allow_stale=request.allow_stale, check_mode=check_mode, lock_timeout=request.lock_timeout,
                            signing=request.signing, pin=request.pin, progress_file=request.progress_file)


def sync_environment(daemon, env, tarball_dir, state_dir, prune=False, allow_stale=False, check_mode=False,
                     lock_timeout=3600, signing=None, pin=None, progress_file=None):
    """Make kohakuriver/<env>:base the newest tarball's image (the pinned one: pin, a tarball file name or timestamp);
    return the result dict of image_sync.

    daemon: a daemon.Daemon (Daemon.of(client) for an SDK client). signing: a SigningPolicy, or None. progress_file: a
    path where a load writes its progress while it runs (progress.py), or None.
    """
    started = time.monotonic()
    tarball_dir = tarball_folder(tarball_dir)
    found = survey(daemon, env, tarball_dir, allow_stale, signing, pin)
    result = _result(found)
    result['pin'] = pin
    if found.action == LOAD and check_mode:
        from ansible_collections.kohakuriver.docker.plugins.module_utils.syncload import load_plan
        result.update(load_plan(daemon.changing_client, env, found.tarball, found.sidecar, found.base))
    if found.action != NOTHING and not check_mode:
        _make_dir(state_dir)
        with env_lock(state_dir, env, timeout=lock_timeout) as waited:
            result['lock_wait'] = round(waited, 3)
            found = survey(daemon, env, tarball_dir, allow_stale, signing, pin)
            result.update(_result(found))
            if found.action != NOTHING:
                applied = _apply(daemon.changing_client, found, prune, pin, progress_file)
                result['warnings'].extend(applied.pop('warnings', []))
                result.update(applied)
    result['changed'] = found.action != NOTHING or bool(result['pruned'])
    result['diff'] = _diff(found, result)
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
        layers_to_send=[], bytes_to_send=0, pruned=[], stale=found.stale, warnings=list(found.warnings),
        signed_by=found.signed_by,
    )


def _diff(found, result):
    """Before: the :base image and its timestamp; after: the image it becomes, and the layers and bytes a load sends."""
    before = dict(image_id=result['previous_image_id'], timestamp=image_timestamp(found.base) if found.base else None)
    after = dict(before) if found.action == NOTHING else dict(image_id=result['image_id'], timestamp=result['timestamp'])
    after.update(layers_to_send=result['layers_to_send'], bytes_to_send=result['bytes_to_send'])
    return dict(before=before, after=after)


def _make_dir(path):
    try:
        os.makedirs(path, mode=0o755, exist_ok=True)
    except OSError as exc:
        raise Failure('Cannot create the state folder %s for locks: %s; set state_dir.' % (path, exc.strerror))


def _apply(client, found, prune, pin=None, progress_file=None):
    """Tag or load as found.action says, then prune if asked; the result entries this changes."""
    from ansible_collections.kohakuriver.docker.plugins.module_utils.images import tag
    if found.action == TAG:  # a rollback: syncload (and loadstream) are not even imported
        tag(client, found.env, found.candidate['Id'], found.tarball.timestamp)
        applied = dict(image_id=found.candidate['Id'], verified=found.sidecar is not None)
    else:
        from ansible_collections.kohakuriver.docker.plugins.module_utils.syncload import load_tarball
        progress = Progress(progress_file)
        try:
            applied = load_tarball(client, found.env, found.tarball, found.sidecar, found.base, progress=progress)
        finally:
            progress.close()
    if prune:
        from ansible_collections.kohakuriver.docker.plugins.module_utils.syncload import prune_superseded
        previous_id = found.base.get('Id') if found.base else None
        protect = () if pin is None else (pin_timestamp(found.env, pin),)
        applied['pruned'] = prune_superseded(client, found.env, applied['image_id'], previous_id, protect)
    return applied
