# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runner-side sync from an OCI registry: which version is wanted, is `kohakuriver/<env>:base` it, and if not, pull it.

The wanted version is a manifest digest: the one the newest pushed sidecar on the share records (the pinned one's,
given a pin), or, without a share, the digest the registry's `latest` tag (the `<timestamp>` tag, given a pin) names
now. Up to date is the `:base` image being the sidecar's (one of the IDs image_identity gives its tarball's image,
however it arrived), or its RepoDigests holding `<repository>@<digest>` (with a sidecar: and its ID being the
sidecar's image ID): one inspect, plus one small registry request when a tag must be resolved. Otherwise the
manifest is read by digest (registry_client: small, its digest verified) and its config digest checked against the
sidecar before the daemon pulls by that digest (registry_pull.py), never by a moving tag.
"""

from __future__ import annotations

import os
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import sidecar_image_ids
from ansible_collections.kohakuriver.docker.plugins.module_utils.locks import env_lock
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import REGISTRY_LATEST_TAG, image_reference
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import RegistrySettings
from ansible_collections.kohakuriver.docker.plugins.module_utils.signing import verified_sidecar
from ansible_collections.kohakuriver.docker.plugins.module_utils.store import chosen_tarball, list_tarballs, pin_timestamp, refuse_link_out_of
from ansible_collections.kohakuriver.docker.plugins.module_utils.sync import SyncRequest, image_timestamp, sync_environment

SOURCES = ('auto', 'registry', 'share')
NOTHING, TAG, PULL = 'none', 'tag', 'pull'


class SyncSource(object):
    """Where a sync takes the environment from: the validated source, registry (RegistrySettings or None) and
    fallback_to_share options."""

    def __init__(self, params):
        self.registry = RegistrySettings.from_option(params.get('registry'))
        self.source = params.get('source') or 'auto'
        if self.source not in SOURCES:
            raise Failure('source %r is not one of %s.' % (self.source, ', '.join(SOURCES)))
        if self.source == 'registry' and self.registry is None:
            raise Failure('source: registry needs the registry option (at least registry.url).')
        # Without a registry source the share is the source already: inventory may set it cluster-wide.
        self.fallback_to_share = bool(params.get('fallback_to_share')) and self.uses_registry

    @property
    def uses_registry(self):
        return self.registry is not None and self.source != 'share'


class SourcedSyncRequest(SyncRequest):
    """image_sync's parameters, validated: SyncRequest's, and source (a SyncSource)."""

    def __init__(self, params):
        super(SourcedSyncRequest, self).__init__(params)
        self.source = SyncSource(params)


def sync_request(daemon, request, check_mode=False):
    """image_sync: sync_from_source for a SourcedSyncRequest."""
    return sync_from_source(daemon, request.env, request.tarball_dir, request.state_dir, request.source, prune=request.prune,
                            allow_stale=request.allow_stale, check_mode=check_mode, lock_timeout=request.lock_timeout,
                            signing=request.signing, pin=request.pin, progress_file=request.progress_file)


class RegistryUnavailable(Failure):
    """The registry cannot serve this sync (down, refusing, without the digest, or the share names no pushed version),
    found before anything changed: the share may stand in (fallback_to_share)."""


def pushed(sidecar, where):
    """The sidecar's `registry` record (repository, tag, digest: sidecar.py checked their types), None when it records
    no push; a repository without a path is a Failure."""
    record = sidecar.registry if sidecar is not None else None
    if record is not None and '/' not in record['repository']:
        raise Failure('%s: registry.repository %r is not <url>/<namespace>/<env>; remove the sidecar or package again.'
                      % (where, record['repository']))
    return record


class Wanted(object):
    """The version a runner should run: repository (<url>/<path>, pulled from), path (the registry API's name),
    digest (None until a tag is resolved), tag (resolved when digest is None), timestamp (None when unknown), and the
    tarball, sidecar and signed_by of the share when it named the version."""

    def __init__(self, settings, path, digest=None, tag=None, timestamp=None, tarball=None, sidecar=None, signed_by=None):
        self.repository = '%s/%s' % (settings.url, path)
        self.path = path
        self.digest = digest
        self.tag = tag
        self.timestamp = timestamp
        self.tarball = tarball
        self.sidecar = sidecar
        self.signed_by = signed_by
        self.candidate = None  # the wanted image when the daemon holds it under another name (an inspect dict)
        self.warnings = []

    @property
    def reference(self):
        return '%s@%s' % (self.repository, self.digest)

    @property
    def expected_ids(self):
        """The IDs the image may have on a daemon: its config digest (the sidecar's image ID) on the classic image
        store, the digest pulled on the containerd store."""
        return tuple(found for found in ((self.sidecar or {}).get('image_id'), self.digest) if found)


def wanted_version(env, tarball_dir, settings, signing=None, pin=None):
    """The Wanted version of env: from the share when tarball_dir is a folder with tarballs, else from the tags."""
    timestamp = pin_timestamp(env, pin) if pin is not None else None
    tags_only = Wanted(settings, settings.path(env), tag=str(timestamp) if pin is not None else REGISTRY_LATEST_TAG,
                       timestamp=timestamp)
    if not os.path.isdir(tarball_dir):
        return tags_only
    try:
        kept = list_tarballs(tarball_dir, env)
    except Failure as failure:
        tags_only.warnings.append('%s Taking the version from the registry tag %s instead.' % (failure.msg, tags_only.tag))
        return tags_only
    if not kept:
        return tags_only
    chosen = chosen_tarball(kept, tarball_dir, env, pin) if pin is not None else _newest_pushed(kept, tarball_dir, env)
    refuse_link_out_of(tarball_dir, chosen.path, 'use it')
    sidecar, signed_by = verified_sidecar(chosen.path, signing) if signing is not None else (chosen.sidecar, None)
    record = pushed(sidecar, chosen.sidecar_path)
    if record is None:
        raise RegistryUnavailable('The tarball %s records no registry push (its sidecar has no registry digest): sync it '
                                  'from the share (source: share) or package it with registry.' % chosen.path)
    if sidecar.file not in (None, chosen.file_name):
        raise Failure('The sidecar %s describes %s, not %s; remove it or the tarball.'
                      % (chosen.sidecar_path, sidecar.file, chosen.file_name))
    path = record['repository'].split('/', 1)[1]
    if not path.endswith('/' + env):
        raise Failure('%s: registry.repository %s is not a repository of environment %s; remove the sidecar or package '
                      'again.' % (chosen.sidecar_path, record['repository'], env))
    found = Wanted(settings, path, digest=record['digest'], timestamp=chosen.timestamp, tarball=chosen, sidecar=sidecar,
                   signed_by=signed_by)
    newer = [tarball.file_name for tarball in kept if tarball.timestamp > chosen.timestamp]
    if newer and pin is None:
        found.warnings.append('%s %s newer but not in the registry; syncing %s, the newest pushed.'
                              % (', '.join(newer), 'is' if len(newer) == 1 else 'are', chosen.file_name))
    if signing is not None and signed_by is None:
        found.warnings.append('%s has no signature; it was trusted without one (set require_signature: true to refuse '
                              'unsigned tarballs).' % chosen.path)
    return found


def _newest_pushed(kept, tarball_dir, env):
    for tarball in kept:
        if pushed(tarball.sidecar, tarball.sidecar_path) is not None:
            return tarball
    raise RegistryUnavailable('No tarball of environment %s in %s records a registry push (newest: %s): package it with '
                              'registry, or sync from the share (source: share).' % (env, tarball_dir, kept[0].file_name))


def holds(image, wanted):
    """Is an inspected image (or None) the wanted version: with a sidecar, of one of the IDs its tarball's image has
    (loaded from the share, say, when the registry was down); else pulled by its digest (RepoDigests, the repository's
    path under any registry url, such as a rack's pull-through cache) and, with a sidecar, of its image ID?"""
    if image is None:
        return False
    if wanted.sidecar is not None and image.get('Id') in sidecar_image_ids(wanted.sidecar):
        return True
    if wanted.digest is None:
        return False
    suffix = '/%s@%s' % (wanted.path, wanted.digest)
    if not any(entry.endswith(suffix) for entry in image.get('RepoDigests') or []):
        return False
    return wanted.sidecar is None or image.get('Id') in wanted.expected_ids


def check_manifest(manifest, wanted):
    """Refuse a manifest whose config is not the image the sidecar records (nothing is pulled then)."""
    expected = (wanted.sidecar or {}).get('image_id')
    if expected and manifest.config_digest != expected:
        raise Failure('The registry manifest %s has config %s, but the sidecar %s records image %s: the registry holds '
                      'another image under that digest than the share says; nothing was pulled, %s stays as it was.'
                      % (wanted.reference, manifest.config_digest, wanted.tarball.sidecar_path, expected,
                         image_reference(wanted.tarball.env)))


def sync_from_source(daemon, env, tarball_dir, state_dir, source, prune=False, allow_stale=False, check_mode=False,
                     lock_timeout=3600, signing=None, pin=None, progress_file=None):
    """sync_environment (the share) or sync_from_registry, as source (a SyncSource) says; with fallback_to_share, a
    registry that fails before anything changed hands over to the share, with a warning."""
    share = dict(prune=prune, allow_stale=allow_stale, check_mode=check_mode, lock_timeout=lock_timeout, signing=signing, pin=pin)
    if not source.uses_registry:
        result = sync_environment(daemon, env, tarball_dir, state_dir, progress_file=progress_file, **share)
        result['source'] = 'share'
        return result
    try:
        return sync_from_registry(daemon, env, tarball_dir, state_dir, source.registry, **share)
    except RegistryUnavailable as failure:
        if not source.fallback_to_share:
            raise
        result = sync_environment(daemon, env, tarball_dir, state_dir, progress_file=progress_file, **share)
        result['warnings'].insert(0, '%s Synced from the tarball folder instead (fallback_to_share).' % failure.msg)
        result['source'] = 'share'
        return result


def sync_from_registry(daemon, env, tarball_dir, state_dir, settings, prune=False, allow_stale=False, check_mode=False,
                       lock_timeout=3600, signing=None, pin=None):
    """Make kohakuriver/<env>:base the wanted registry version (see the module docstring); image_sync's result dict."""
    started = time.monotonic()
    wanted = wanted_version(env, tarball_dir, settings, signing, pin)
    base = daemon.inspect_image(image_reference(env))
    try:
        manifest, action = _decide(daemon, env, settings, wanted, base)
    except RegistryUnavailable as failure:
        if not allow_stale or base is None:
            raise
        return _finish(_result(env, wanted, base, NOTHING, pin, stale=True, warnings=[
            '%s Using the local image %s (allow_stale).' % (failure.msg, image_reference(env))]), base, started)
    result = _result(env, wanted, base, action, pin)
    if action == NOTHING:
        return _finish(result, base, started)
    from ansible_collections.kohakuriver.docker.plugins.module_utils import registry_pull  # only to change something
    if check_mode:
        result.update(registry_pull.pull_plan(daemon.changing_client, settings, wanted, manifest, base))
    else:
        registry_pull.make_dir(state_dir)
        with env_lock(state_dir, env, timeout=lock_timeout) as waited:
            result['lock_wait'] = round(waited, 3)
            base = daemon.inspect_image(image_reference(env))
            result['previous_image_id'] = (base or {}).get('Id')
            if holds(base, wanted):
                result.update(action=NOTHING, image_id=base['Id'])
            else:
                try:
                    client = registry_pull.pull_client(daemon, settings)
                    applied = registry_pull.apply(client, settings, env, wanted, manifest, base, prune, pin)
                except registry_pull.PullFailed as failure:
                    raise RegistryUnavailable(failure.msg)
                result['warnings'].extend(applied.pop('warnings', []))
                result.update(applied)
    return _finish(result, base, started)


def _decide(daemon, env, settings, wanted, base):
    """(manifest or None, action): NOTHING when :base holds the wanted digest (no registry request when the share named
    it), TAG when the daemon holds that image under another name, PULL otherwise."""
    if holds(base, wanted):
        return None, NOTHING
    from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_client import RegistryClient
    client = RegistryClient.from_settings(settings)  # an up-to-date runner that the share names a digest asks no registry
    try:
        if wanted.digest is None:
            wanted.digest = _unavailable_as_such(client.resolve, wanted.path, wanted.tag)
            if holds(base, wanted):
                return None, NOTHING
        manifest = _unavailable_as_such(client.manifest, wanted.path, wanted.digest)
    finally:
        client.close()
    check_manifest(manifest, wanted)
    from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_pull import held_image
    wanted.candidate = held_image(daemon, env, wanted, manifest)
    return manifest, TAG if wanted.candidate is not None else PULL


def _unavailable_as_such(call, *args):
    try:
        return call(*args)
    except RegistryUnavailable:
        raise
    except Failure as failure:
        raise RegistryUnavailable(failure.msg)


def _result(env, wanted, base, action, pin, stale=False, warnings=None):
    image = base if action == NOTHING else None
    return dict(
        env=env, image=image_reference(env), action=action, source='registry', pin=pin,
        tarball=wanted.tarball.path if wanted.tarball else None, timestamp=_timestamp(wanted, base, action, stale),
        image_id=(image or {}).get('Id') or ((wanted.candidate or {}).get('Id') if action == TAG else None),
        previous_image_id=(base or {}).get('Id'), verified=action == NOTHING and not stale and wanted.digest is not None,
        registry=dict(repository=wanted.repository, digest=wanted.digest, tag=wanted.tag),
        loaded=False, pulled=False, thin=False, bytes_read=0, bytes_sent=0, layers_sent=0, layers_skipped=0, lock_wait=0.0,
        layers_to_send=[], bytes_to_send=0, layers_to_pull=[], bytes_to_pull=0, layers_pulled=0, layers_held=0,
        pruned=[], stale=stale, warnings=list(wanted.warnings) + list(warnings or []), signed_by=wanted.signed_by,
    )


def _timestamp(wanted, base, action, stale):
    """The version's timestamp: the sidecar's or the pin's, else the label of the image that is (or becomes) :base."""
    if wanted.timestamp is not None and not stale:
        return wanted.timestamp
    image = base if action == NOTHING else wanted.candidate
    return image_timestamp(image) if image else None


def _finish(result, base, started):
    result['changed'] = result['action'] != NOTHING or bool(result['pruned'])
    before = dict(image_id=result['previous_image_id'], timestamp=image_timestamp(base) if base else None)
    after = dict(before) if result['action'] == NOTHING else dict(image_id=result['image_id'], timestamp=result['timestamp'])
    after.update(registry_digest=result['registry']['digest'], layers_to_pull=result['layers_to_pull'],
                 bytes_to_pull=result['bytes_to_pull'])
    result['diff'] = dict(before=before, after=after)
    result['seconds'] = round(time.monotonic() - started, 3)
    return result
