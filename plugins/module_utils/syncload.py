# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runner-side changes, once sync.py has decided on them: tag, load (thin or whole), prune, through the Docker SDK.

A load sends only the layers the daemon lacks (a thin archive, see loadstream.py) when it holds the bottom ones,
and the whole tarball otherwise or when the daemon refuses the thin archive. `:base` is tagged only after the
loaded image ID checks out, so the previous `:base` keeps running tasks until then.
"""

from __future__ import annotations

import os
import re
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_archive import ImageArchive
from ansible_collections.kohakuriver.docker.plugins.module_utils.images import images_in_use, remove_if_untagged, remove_through_tags, tag
from ansible_collections.kohakuriver.docker.plugins.module_utils.layers import held_chain_ids, held_layer_count
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import archive_image_ids, uses_containerd_store
from ansible_collections.kohakuriver.docker.plugins.module_utils.loadstream import FullStream, OciThinStream, OciWholeStream, ThinStream
from ansible_collections.kohakuriver.docker.plugins.module_utils.local_api import explain, inspect_or_none, refused_errors, transport_errors
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import image_repository, is_snapshot_tag

OWN_IMAGES_ASKED = 4
_LOADED_ID = re.compile(r'Loaded image ID: (sha256:[0-9a-f]{64})')


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


class Refused(Failure):
    """The daemon answered the load with an error."""


def load_tarball(client, env, tarball, sidecar, base=None, held=None, progress=None):
    """Stream tarball into the daemon untagged, check the image ID, then tag it; on failure leave :base alone.

    Only the layers the daemon lacks are sent when it holds the bottom ones (held: the chain IDs it holds, asked from
    the daemon when None); if it refuses that thin archive, the whole tarball is sent. An error of the daemon or of
    the connection is a Failure naming the load and the tarball. progress: a progress.Progress that counts the bytes sent.
    """
    archive, held_layers = _plan(client, env, tarball, sidecar, base, held)
    try:
        present_before = set(client.api.images(quiet=True, all=True))
        stream_types = _stream_types(client)
    except transport_errors() as exc:
        raise Failure('Cannot load %s: the Docker daemon failed before the load started: %s.' % (tarball.path, explain(exc)),
                      tarball=tarball.path)
    warnings = []
    thin_stream, whole_stream = stream_types
    if held_layers:
        try:
            return _load(client, env, tarball, thin_stream(archive, held_layers), present_before, warnings, progress)
        except Refused as refused:
            warnings.append('%s; loaded the whole tarball instead of the %d of %d layers the daemon seemed to lack.'
                            % (refused.msg, len(archive.diff_ids) - held_layers, len(archive.diff_ids)))
    return _load(client, env, tarball, whole_stream(archive), present_before, warnings, progress)


def _plan(client, env, tarball, sidecar, base, held=None):
    """The tarball's ImageArchive and how many of its bottom layers the daemon holds (held: its chain IDs, or None)."""
    archive = ImageArchive(tarball.path, sidecar)
    try:
        if held is None:
            held = held_chain_ids(_images_sharing_layers(client, env, base, archive.parent_image))
    except transport_errors() as exc:
        raise Failure('Cannot load %s: the Docker daemon failed before the load started: %s.' % (tarball.path, explain(exc)),
                      tarball=tarball.path)
    return archive, held_layer_count(archive.diff_ids, held)


def load_plan(client, env, tarball, sidecar, base=None):
    """What load_tarball would send, sending nothing: layers_to_send (the diff IDs of the layers the daemon lacks) and
    bytes_to_send (the size of the thin archive of those, or of the whole tarball when the daemon holds none)."""
    archive, held_layers = _plan(client, env, tarball, sidecar, base)
    try:
        thin_stream, whole_stream = _stream_types(client)
        stream = thin_stream(archive, held_layers) if held_layers else whole_stream(archive)
    except transport_errors() as exc:
        raise Failure('Cannot plan the load of %s: the Docker daemon failed: %s.' % (tarball.path, explain(exc)),
                      tarball=tarball.path)
    return dict(layers_to_send=list(archive.diff_ids[held_layers:]), bytes_to_send=len(stream))


def _stream_types(client):
    """The (thin, whole) archive types this daemon takes: docker-legacy and the tarball as it is on the classic image
    store; on the containerd one an OCI layout for both, because its import of a docker-legacy archive names the image
    by a manifest made of whatever blobs of those layers its content store holds (a registry pull's compressed ones,
    say), which no tarball can predict and so no load could check."""
    if uses_containerd_store(client.api.info()):
        return OciThinStream, OciWholeStream
    return ThinStream, FullStream


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
        except refused_errors():
            pass  # a reference this daemon cannot parse only means nothing to reuse
    return images


def _load(client, env, tarball, stream, present_before, warnings, progress=None):
    started = time.monotonic()
    sent = stream
    if progress is not None:
        progress.start('loading %s (%s)' % (os.path.basename(tarball.path), 'thin: %d of %d layers' % (
            stream.layers_sent, stream.layers_sent + stream.layers_skipped) if stream.thin else 'whole'), total=len(stream))
        sent = progress.counted(stream)
    try:
        loaded_id = loaded_image_id(client.api.load_image(sent, quiet=True))
    except Failure:
        _discard(client, archive_image_ids(stream.archive), present_before)
        raise
    except ValueError as exc:
        _discard(client, archive_image_ids(stream.archive), present_before)
        raise Refused('The daemon refused %s: %s' % (tarball.path, exc), tarball=tarball.path)
    except refused_errors() as exc:
        _discard(client, archive_image_ids(stream.archive), present_before)
        raise Refused('The daemon refused %s: %s' % (tarball.path, explain(exc)), tarball=tarball.path)
    except transport_errors() as exc:
        _discard(client, archive_image_ids(stream.archive), present_before)
        raise Failure('Loading %s into the Docker daemon failed after %d of %d bytes were sent: %s. Nothing was tagged; '
                      'sync again once the daemon answers.' % (tarball.path, stream.bytes_sent, len(stream), explain(exc)),
                      tarball=tarball.path)
    image_id = loaded_id or stream.image_id
    expected = archive_image_ids(stream.archive)
    problem = None
    if not stream.complete:
        problem = 'the daemon answered before the whole archive was sent'
    elif image_id is None:
        problem = 'the daemon did not report the loaded image ID'
    elif image_id not in expected:
        problem = 'the daemon loaded image %s, the archive describes %s' % (image_id, ' or '.join(expected))
    if problem:
        _discard(client, (image_id,), present_before)
        raise Failure('Cannot load %s: %s.' % (tarball.path, problem), tarball=tarball.path)
    try:
        tag(client, env, image_id, tarball.timestamp)
    except transport_errors() as exc:
        raise Failure('Loaded %s as image %s, but tagging it %s failed: %s. Sync again to tag it.'
                      % (tarball.path, image_id, image_repository(env), explain(exc)), tarball=tarball.path)
    if stream.archive.sidecar is None:
        warnings.append('%s has no sidecar: loaded unverified (made by KohakuRiver itself?).' % tarball.path)
    seconds = time.monotonic() - started
    return dict(image_id=image_id, verified=stream.verified, loaded=True, thin=stream.thin, bytes_read=stream.bytes_read,
                bytes_sent=stream.bytes_sent, layers_sent=stream.layers_sent, layers_skipped=stream.layers_skipped,
                layers_to_send=list(stream.archive.diff_ids[stream.layers_skipped:]), bytes_to_send=len(stream),
                load_seconds=round(seconds, 3), load_mb_per_s=round(stream.bytes_sent / 1e6 / seconds, 1) if seconds > 0 else None,
                warnings=warnings)


def _discard(client, image_ids, present_before):
    """Remove an image a failed load left behind (under any of image_ids): only if it is new, untagged and no
    container uses it.

    Called while a load's own error is raised: an error of its own (the daemon gone, say) is dropped, never raised
    in place of that one."""
    for image_id in image_ids:
        if not image_id or image_id in present_before:
            continue
        try:
            remove_if_untagged(client, image_id)
        except transport_errors():
            return


def prune_superseded(client, env, current_id, previous_id=None, protect=()):
    """Remove kohakuriver/<env> images other than current_id that no container uses and that carry no timestamp of
    protect (the pinned versions) in a kohakuriver/<env>:<timestamp> tag; return what went."""
    repository = image_repository(env)
    ours = dict((image['Id'], [tag for tag in image.get('RepoTags') or [] if tag.startswith(repository + ':')])
                for image in client.api.images(name=repository) if image['Id'] != current_id)
    if previous_id and previous_id != current_id and previous_id not in ours:
        ours[previous_id] = []
    protected_tags = set('%s:%d' % (repository, timestamp) for timestamp in protect)
    for image_id in [image_id for image_id, tags in ours.items() if protected_tags.intersection(tags)]:
        del ours[image_id]
    if not ours:
        return []
    in_use = images_in_use(client)
    pruned = []
    for image_id, tags in sorted(ours.items()):
        if image_id in in_use or any(is_snapshot_tag(tag) for tag in tags):
            continue
        if tags:
            removed = remove_through_tags(client, image_id, tags) is None
        else:
            removed = remove_if_untagged(client, image_id)
        if removed:
            pruned.append(dict(id=image_id, tags=tags))
    return pruned
