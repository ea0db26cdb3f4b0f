# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The chain half of a packaging run (packaging.Packaging's steps for layout chain): the container continues from
its commit (continuation.py), the layers above the base image are squashed past max_layers (squash.py), and what an
update sends to a runner holding the newest tarball (layer_plan.py).
"""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import inspect_or_none
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import declared_image
from ansible_collections.kohakuriver.docker.plugins.module_utils.continuation import Continuation, marker_path, recover
from ansible_collections.kohakuriver.docker.plugins.module_utils.images import remove_quietly
from ansible_collections.kohakuriver.docker.plugins.module_utils.layer_plan import made_update, needs_squash, predicted_update
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import container_name
from ansible_collections.kohakuriver.docker.plugins.module_utils.squash import squash_image


class ChainSteps(object):
    """Mixed into Packaging, whose client, request, env, folder, guard, target, result, image_layers, continuation,
    squashed_id, _set_step and _patient these use."""

    def _plan_continuation(self, container, running):
        """Continue the container from its commit (layout chain), unless it is committed paused: then it keeps
        running, so it cannot (what it writes after the commit would be lost), and its next commit holds the
        changes since its last continuation."""
        self.continuation = None
        if self.request.layout == 'chain' and not (running and self.request.pause):
            self.continuation = Continuation(self.client, container, marker_path(self.folder, self.env),
                                             on_step=self._set_step)

    def _after_commit(self, container):
        """(what replaces the container's start after the commit, or None; whether the commit is squashed first)."""
        if self.continuation is None:
            return None, False
        if not needs_squash('chain', self.request.max_layers, self.image_layers, self._base_layers(container)):
            return self.continuation.run, False
        return (lambda image_id: self.continuation.run(self._squash(image_id, container))), True

    def _recover_continuation(self):
        """Complete or roll back the continuation a killed run left (its marker), before anything else."""
        marker = marker_path(self.folder, self.env)
        continued = recover(self.client, marker)
        if continued is not None:
            self.result['reasons'].append(continued)
            self.result['cleaned'].append(marker)

    def _predicted_update(self, container, newest):
        return predicted_update(self.request.layout, self.request.max_layers, self.image_layers,
                                self._base_layers(container), newest.sidecar.layers if newest and newest.sidecar else None,
                                self._size_rw(container))

    def _made_update(self, sidecar, newest):
        return made_update(self.request.layout, sidecar['layers'], newest.sidecar.layers if newest and newest.sidecar else None,
                           sidecar['members'], sidecar['layer_members'], self.squashed_id)

    def _size_rw(self, container):
        listed = self.client.api.containers(all=True, size=True, filters={'id': container['Id']})
        return (listed[0].get('SizeRw') if listed else None) or 0

    def _base_layers(self, container):
        """The layers of the image the container was declared with (its own image's when that is gone)."""
        declared = inspect_or_none(self.client, declared_image(container)[1])
        return ((declared or {}).get('RootFS') or {}).get('Layers') or self.image_layers

    def _drop(self, image_id):
        """Remove the image this run committed, once a continuation that may run it has ended (it stays when the
        container continues from it; a tag a container's image has stays too, as Docker keeps it)."""
        self.guard.settled()
        remove_quietly(self.client, image_id)

    def _squash(self, image_id, container):
        """The image of image_id's base layers plus one of the rest (squash.py), or the container started again."""
        try:
            self._set_step('squashing the layers of %s above its base image (max_layers=%d)'
                           % (container_name(self.env), self.request.max_layers))
            self.squashed_id = squash_image(self.client, image_id, self._base_layers(container), self.target, self._patient)
        except BaseException:
            if self.continuation.state['running']:
                self.client.api.start(container['Id'])
            raise
        remove_quietly(self.client, image_id)
        return self.squashed_id

    def _source_id(self, container):
        """The container the tarball's image is the content of: the continuing one when there is one."""
        return self.continuation.new_id if self.continuation is not None and self.continuation.new_id else container['Id']
