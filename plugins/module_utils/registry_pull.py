# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runner-side changes of a registry sync, once registry_sync.py has decided on them: pull by digest, verify, tag,
prune, through the daemon's changing client (daemon.py: the standard library's for a local socket, else the Docker
SDK's); and check mode's plan of what a pull would fetch.

The daemon pulls `<repository>@<digest>` (only the layers it lacks, checking each against its digest); `:base` is
tagged only after the pulled image's ID is the manifest's (its config digest on the classic image store, the digest
pulled on the containerd store), so the previous `:base` keeps running tasks until then.
"""

from __future__ import annotations

import contextlib
import os
import re
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.images import images_in_use, remove_through_tags, tags_of
from ansible_collections.kohakuriver.docker.plugins.module_utils.local_api import explain, inspect_or_none, refused_errors, transport_errors
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import BASE_TAG, image_reference, image_repository, is_snapshot_tag
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_client import RegistryClient
from ansible_collections.kohakuriver.docker.plugins.module_utils.sync import _make_dir as make_dir, image_timestamp
from ansible_collections.kohakuriver.docker.plugins.module_utils.syncload import prune_superseded

HELD_MANIFESTS_ASKED = 4
PULL_ATTEMPTS = 3
RETRY_PAUSE = 1.0  # seconds before the second attempt, doubled before each later one
# A registry or cache that fails on its side (distribution's pull-through cache answers 500 to concurrent misses of
# one blob); the daemon keeps the layers it finished, so another attempt fetches only the rest.
_SERVER_SIDE = re.compile(r'\b(50[0234]) (Internal Server Error|Bad Gateway|Service Unavailable|Gateway Timeout)\b')
_DOCKER_CONFIGS = (('DOCKER_CONFIG', 'config.json'), ('HOME', '.docker/config.json'), ('HOME', '.dockercfg'))

__all__ = ['make_dir', 'registry_client', 'held_image', 'pull_client', 'pull_plan', 'apply', 'pull_counts', 'PullFailed']


class PullFailed(Failure):
    """The daemon's pull failed (the registry down, refusing, or without that digest); nothing was tagged."""


def pull_client(daemon, settings):
    """The client that pulls: the daemon's changing client, unless the settings give no credentials and `docker login`
    may have stored some (a docker config file exists): the Docker SDK sends those, as the docker CLI does."""
    if settings.username or not any(os.environ.get(variable) and os.path.isfile(os.path.join(os.environ[variable], name))
                                    for variable, name in _DOCKER_CONFIGS):
        return daemon.changing_client
    return daemon.client


@contextlib.contextmanager
def registry_client(settings):
    client = RegistryClient.from_settings(settings)
    try:
        yield client
    finally:
        client.close()


def manifest_ids(manifest):
    """The IDs an image pulled by this manifest may have: its config digest (classic store), the digest pulled and
    the platform manifest's (containerd store)."""
    return tuple(found for found in (manifest.config_digest, manifest.digest, manifest.platform_digest) if found)


def held_image(daemon, env, wanted, manifest):
    """The wanted image when the daemon already holds it (pulled by that digest, or tagged with its timestamp and of
    the manifest's ID), else None: then a re-tag moves no bytes."""
    ids = manifest_ids(manifest)
    found = daemon.inspect_image(wanted.reference)
    if found is None and wanted.timestamp is not None:
        found = daemon.inspect_image(image_reference(env, wanted.timestamp))
    return found if found is not None and found.get('Id') in ids else None


def pull_counts(events, layers, pulled=None):
    """(layers pulled, layers held, bytes pulled) from the pull's JSON messages, layers: the manifest's (digest, size);
    an error message raises ValueError with it on one line. pulled: a set of the layers (12 hex digits) an earlier
    attempt downloaded, which this one adds to.

    A layer is pulled when the daemon reports it downloaded (the classic store says 'Download complete' and 'Pull
    complete', the containerd store 'Download complete' only, by the first 12 hex digits of its digest); the others
    were held (the classic store says 'Already exists', the containerd store nothing)."""
    sizes = dict((digest.split(':', 1)[-1][:12], size) for digest, size in layers)
    pulled = set() if pulled is None else pulled
    for event in events:
        if not isinstance(event, dict):
            continue
        error = event.get('error') or (event.get('errorDetail') or {}).get('message')
        if error:
            raise ValueError(' '.join(str(error).split()))
        if event.get('status') in ('Download complete', 'Pull complete') and event.get('id') in sizes:
            pulled.add(event['id'])
    return len(pulled), len(sizes) - len(pulled), sum(sizes[layer] for layer in pulled)


def pull_plan(client, settings, wanted, manifest, base):
    """What a pull would fetch, fetching nothing: layers_to_pull (the manifest's layer digests that no manifest of a
    version this runner holds from the repository lists: an approximation, layers shared only with other images are
    counted as missing) and bytes_to_pull (their compressed sizes)."""
    if wanted.candidate is not None:
        return dict(layers_to_pull=[], bytes_to_pull=0)
    held_digests = _held_versions(client, wanted, base)
    held_layers = set()
    with registry_client(settings) as registry:
        for digest in held_digests[:HELD_MANIFESTS_ASKED]:
            try:
                held_layers.update(layer for layer, dummy in registry.manifest(wanted.path, digest).layers)
            except Failure:
                continue  # a version the registry no longer has only means nothing known held
    missing = [(digest, size) for digest, size in manifest.layers if digest not in held_layers]
    return dict(layers_to_pull=[digest for digest, dummy in missing], bytes_to_pull=sum(size for dummy, size in missing))


def _held_versions(client, wanted, base):
    """The digests of the repository's versions this runner holds (:base's first), by their RepoDigests."""
    suffix = '/%s@' % wanted.path
    entries = list((base or {}).get('RepoDigests') or [])
    try:
        for image in client.api.images(name=wanted.repository):
            entries.extend(image.get('RepoDigests') or [])
    except transport_errors():
        pass  # the plan is approximate; the pull itself fetches what is missing
    digests = []
    for entry in entries:
        if suffix in entry and entry.rsplit('@', 1)[1] not in digests:
            digests.append(entry.rsplit('@', 1)[1])
    return digests


def apply(client, settings, env, wanted, manifest, base, prune=False, pin=None):
    """Pull (or take the held image), verify, tag, prune if asked; the result entries this changes."""
    applied = dict(warnings=[])
    image = wanted.candidate
    if image is None:
        image = _pull(client, settings, wanted, manifest, applied)
    timestamp = wanted.timestamp if wanted.timestamp is not None else image_timestamp(image)
    try:
        if timestamp is not None:
            client.api.tag(image['Id'], image_repository(env), str(timestamp))
        client.api.tag(image['Id'], image_repository(env), BASE_TAG)
    except transport_errors() as exc:
        raise Failure('Pulled %s as image %s, but tagging it %s failed: %s. Sync again to tag it.'
                      % (wanted.reference, image['Id'], image_reference(env), explain(exc)))
    applied.update(image_id=image['Id'], timestamp=timestamp, verified=True)
    if prune:
        previous_id = base.get('Id') if base else None
        protect = () if pin is None or wanted.timestamp is None else (wanted.timestamp,)
        pruned = prune_superseded(client, env, image['Id'], previous_id, protect)
        applied['pruned'] = _merged(pruned, _drop_superseded_pulls(client, env, wanted, image['Id'], base, protect))
    return applied


def _pull(client, settings, wanted, manifest, applied):
    """Pull wanted.reference, again after a registry's server-side error; the pulled image's inspect dict once its ID
    is the manifest's."""
    started = time.monotonic()
    pulled = set()
    for attempt in range(1, PULL_ATTEMPTS + 1):
        try:
            layers_pulled, layers_held, bytes_pulled = _pull_once(client, settings, wanted, manifest, pulled)
            break
        except PullFailed as exc:
            if attempt == PULL_ATTEMPTS or not _SERVER_SIDE.search(str(exc)):
                raise
            applied['warnings'].append('Attempt %d of %d to pull %s failed on the registry\'s side, tried again: %s'
                                       % (attempt, PULL_ATTEMPTS, wanted.reference, _SERVER_SIDE.search(str(exc)).group(0)))
            time.sleep(RETRY_PAUSE * 2 ** (attempt - 1))
    image = client.api.inspect_image(wanted.reference)
    if image.get('Id') not in manifest_ids(manifest):
        raise Failure('The daemon pulled %s as image %s, but its manifest describes %s; nothing was tagged.'
                      % (wanted.reference, image.get('Id'), ' or '.join(manifest_ids(manifest))))
    applied.update(pulled=True, layers_pulled=layers_pulled, layers_held=layers_held, bytes_pulled=bytes_pulled,
                   pull_seconds=round(time.monotonic() - started, 3), pull_attempts=attempt)
    return image


def _pull_once(client, settings, wanted, manifest, pulled):
    auth = dict(username=settings.username, password=settings.password) if settings.username else None
    try:
        events = client.api.pull(wanted.repository, tag=wanted.digest, stream=True, decode=True, auth_config=auth)
        return pull_counts(events, manifest.layers, pulled)
    except (ValueError,) + refused_errors() as exc:
        raise PullFailed('The Docker daemon could not pull %s: %s. Nothing was tagged; the runner keeps what it had.'
                         % (wanted.reference, exc if isinstance(exc, ValueError) else explain(exc)))
    except transport_errors() as exc:
        raise PullFailed('Pulling %s failed: %s. Nothing was tagged; sync again once the daemon answers.'
                         % (wanted.reference, explain(exc)))


def _drop_superseded_pulls(client, env, wanted, current_id, base, protect):
    """Remove the versions pulled from the repository other than current_id that no container uses and no tag outside
    kohakuriver/<env> or of a protected timestamp keeps: their kohakuriver/<env> tags and `<repository>@<digest>` names
    (a pulled image keeps that name after prune_superseded removed its tags). The previous :base is always looked at:
    the containerd image store does not list an image whose layers it took from another image. Returns what went."""
    repository = image_repository(env)
    kept_tags = set('%s:%d' % (repository, timestamp) for timestamp in protect)
    candidates = [listed['Id'] for listed in client.api.images(name=wanted.repository)]
    if base and base.get('Id') not in candidates:
        candidates.append(base['Id'])
    in_use = images_in_use(client)
    dropped = []
    for image_id in candidates:
        image = None if image_id == current_id or image_id in in_use else inspect_or_none(client, image_id)
        if image is None:
            continue
        tags = tags_of(image)
        if kept_tags.intersection(tags) or any(not tag.startswith(repository + ':') or is_snapshot_tag(tag) for tag in tags):
            continue
        names = tags + [entry for entry in image.get('RepoDigests') or [] if entry.startswith(wanted.repository + '@')]
        if names and remove_through_tags(client, image_id, names) is None:
            dropped.append(dict(id=image_id, tags=names))
    return dropped


def _merged(pruned, dropped):
    """prune_superseded's list with _drop_superseded_pulls's: one entry per image, with every name that went."""
    by_id = dict((entry['id'], entry) for entry in pruned)
    for entry in dropped:
        known = by_id.get(entry['id'])
        if known is not None:
            known['tags'] = list(known['tags']) + [name for name in entry['tags'] if name not in known['tags']]
        else:
            pruned.append(entry)
    return pruned
