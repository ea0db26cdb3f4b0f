# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tagging an environment's image, and removing images this collection made, through the client (an SDK client or
local_api.LocalClient): what counts as untagged or in use, and how one goes.

An image is removed through its tags (the last one takes the image) or, untagged, by its ID; the daemon refusing
(404: already gone, 409: a container uses it or another tag still names it) means it stays, never an error. Nothing
host-wide: every removal names one image.
"""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.module_utils.local_api import explain, inspect_or_none, refused_errors, transport_errors
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import BASE_TAG, LABEL_ENV, LABEL_TIMESTAMP, image_repository

UNTAGGED = '<none>:<none>'
_KEPT_BY_DAEMON = (404, 409)


def tags_of(image):
    """The tags an image (inspected or listed) has; Docker lists an untagged image's as <none>:<none>."""
    return [tag for tag in image.get('RepoTags') or [] if tag != UNTAGGED]


def tag(client, env, image_id, timestamp):
    """Tag image_id kohakuriver/<env>:<timestamp> and :base."""
    repository = image_repository(env)
    client.api.tag(image_id, repository, str(timestamp))
    client.api.tag(image_id, repository, BASE_TAG)


def images_in_use(client):
    """The IDs of the images the containers of the daemon, running or not, were created from."""
    return set(container.get('ImageID') for container in client.api.containers(all=True))


def remove_through_tags(client, image_id, tags):
    """Remove image_id by removing each of tags, or by its ID when tags is empty.

    None once done, else the daemon's refusal (an APIError, 404 or 409) that left it; other errors are raised.
    """
    try:
        for reference in tags or [image_id]:
            client.api.remove_image(reference)
    except refused_errors() as exc:
        if getattr(exc, 'status_code', None) not in _KEPT_BY_DAEMON:
            raise
        return exc
    return None


def remove_if_untagged(client, image_id):
    """Remove image_id if it exists and no tag names it; True when it was removed."""
    image = inspect_or_none(client, image_id)
    if image is None or tags_of(image):
        return False
    return remove_through_tags(client, image_id, []) is None


def remove_quietly(client, image_id):
    """Remove an image of our own making (a trial commit, one a failed run leaves); True when it went, never raises."""
    try:
        client.api.remove_image(image_id)
        return True
    except transport_errors() + (ValueError,):
        return False


def remove_committed_images(client, env, keep_id=None, check_mode=False):
    """Remove the images packaging committed for env (labelled with it and a timestamp), other than keep_id.

    Kept: an image a container uses and one a tag outside kohakuriver/<env> names. Returns (removed IDs, kept: one
    'ID: why' line each); in check mode nothing is removed and removed lists what would go.
    """
    repository = image_repository(env)
    filters = {'label': ['%s=%s' % (LABEL_ENV, env), LABEL_TIMESTAMP]}
    in_use = images_in_use(client)
    removed, kept = [], []
    for found in client.api.images(filters=filters):
        tags = tags_of(found)
        foreign = [tag for tag in tags if not tag.startswith(repository + ':')]
        if found['Id'] == keep_id:
            continue
        if found['Id'] in in_use or foreign:
            kept.append('%s: %s' % (found['Id'], 'a container uses it' if found['Id'] in in_use
                                    else 'also tagged ' + ', '.join(foreign)))
            continue
        refusal = None if check_mode else remove_through_tags(client, found['Id'], tags)
        if refusal is None:
            removed.append(found['Id'])
        else:
            kept.append('%s: %s' % (found['Id'], explain(refusal)))
    return removed, kept
