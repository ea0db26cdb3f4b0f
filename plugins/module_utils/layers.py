# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of an image's layers a Docker daemon already holds, told by chain IDs.

The daemon's layer store keys a layer by its chain ID, the hash of its diff_id and of the chain ID of the layer
below it: a layer is only reusable together with the whole stack beneath it. Every image on the daemon lists its
diff_ids (inspect's RootFS.Layers), so the chain IDs of a few images give a set to look a new image's layers up in.
"""

from __future__ import annotations

import hashlib


def chain_ids(diff_ids):
    """The chain ID of every prefix of diff_ids (the first layer's chain ID is its diff_id)."""
    chains = []
    for diff_id in diff_ids:
        if chains:
            diff_id = 'sha256:' + hashlib.sha256(('%s %s' % (chains[-1], diff_id)).encode('ascii')).hexdigest()
        chains.append(diff_id)
    return chains


def held_chain_ids(images):
    """The chain IDs of every layer of the inspected images (dicts, None skipped)."""
    held = set()
    for image in images:
        if image:
            held.update(chain_ids((image.get('RootFS') or {}).get('Layers') or []))
    return held


def held_layer_count(diff_ids, held):
    """How many of the bottom layers of diff_ids the daemon holds, given the chain IDs it holds."""
    count = 0
    for chain_id in chain_ids(diff_ids):
        if chain_id not in held:
            break
        count += 1
    return count
