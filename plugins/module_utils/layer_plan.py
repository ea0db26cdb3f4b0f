# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an update sends to a runner that holds the newest tarball: which layers are new, and how many bytes.

A runner loading a tarball skips the layers it holds, so what moves is the layers the newest tarball does not have.
Before a commit (check mode) the new layer is not known yet: its size is estimated from the container's changes
since the image it runs (Docker's SizeRw, the size of its writable layer; a commit's layer tar is that plus tar
headers). With layout chain the container runs its last commit, so that is what changed since the last tarball;
with layout flat it runs its declared base image, so that is everything the environment added.

Pure logic: no daemon calls.
"""

from __future__ import annotations


def needs_squash(layout, max_layers, image_layers, base_layers):
    """Whether the next chained commit (image_layers + 1 layers) must be squashed to base_layers + 1 layers."""
    return layout == 'chain' and len(image_layers) + 1 > max_layers and len(image_layers) > len(base_layers) + 1


def predicted_update(layout, max_layers, image_layers, base_layers, tarball_layers, size_rw):
    """The update a packaging would make, before its commit: layers of the image, layers sent, estimated bytes.

    image_layers: diff IDs of the image the container runs; base_layers: those of its declared base image;
    tarball_layers: those of the newest tarball (None: no tarball); size_rw: the container's SizeRw.
    """
    squash = needs_squash(layout, max_layers, image_layers, base_layers)
    held = set(tarball_layers or [])
    if squash:
        kept = list(base_layers)
    else:
        kept = list(image_layers)
    unsent = [layer for layer in kept if layer not in held]
    return dict(layout=layout, layers=len(kept) + 1, layers_sent=len(unsent) + 1, squash=squash,
                new_layer_bytes=size_rw, sent_layers=unsent + ['(the new layer)'],
                estimate='the new layer is estimated from the container\'s writable layer (SizeRw)%s'
                         % (' plus every layer above the base image, squashed into it' if squash else ''))


def made_update(layout, layers, tarball_layers, members, layer_members, squashed):
    """The update a packaging made: its image's layers, those a runner holding the previous tarball lacks, and
    their bytes in the new tarball (members: the sidecar's members; layer_members: its layer member names)."""
    held = set(tarball_layers or [])
    sizes = dict((member['name'], member['size']) for member in members or [])
    sent = [index for index, layer in enumerate(layers) if layer not in held]
    return dict(layout=layout, layers=len(layers), layers_sent=len(sent), squash=bool(squashed),
                sent_layers=[layers[index] for index in sent],
                bytes_sent=sum(sizes.get(layer_members[index], 0) for index in sent if index < len(layer_members)))
