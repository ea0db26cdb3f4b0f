# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry half of a packaging run (packaging.Packaging's steps for the `registry` option, registry_push.py).

The tarball is published first, exactly as without a registry; the push comes after it, so a failed push rolls
nothing back (the tarball and a continued container stay) and leaves the sidecar without a registry digest, and the
next run pushes again. An up-to-date tarball whose sidecar records a digest the registry still has is not pushed.
"""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.sigterm import Interrupted
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_push import RegistryPush, check_recordable, record


class RegistrySteps(object):
    """Mixed into Packaging, whose client, request, env, docker_host, result, step and _patient these use."""

    _registry_push = None

    def _pusher(self):
        if self.request.registry is None:
            return None
        if self._registry_push is None:
            self._registry_push = RegistryPush(self.client, self.request.registry, self.env, self.docker_host, self._patient,
                                               self.progress)
        return self._registry_push

    def _predict_registry(self, newest, timestamp):
        """Check mode: what would be pushed. timestamp: the new tarball's, or None when none would be made."""
        pusher = self._pusher()
        if pusher is None:
            return
        if timestamp is not None:
            self.result['registry'] = pusher.planned(timestamp)
            return
        self.result['registry'] = pusher.recorded(newest.sidecar)
        if self.result['registry'] is None:
            self._note_missing(pusher, newest)
            self.result['registry'] = pusher.planned(newest.timestamp)
            self.result['changed'] = True

    def _note_missing(self, pusher, tarball):
        field = (tarball.sidecar or {}).get('registry') or {}
        if field.get('repository') == pusher.repository:
            why = 'registry %s no longer has %s@%s, which the sidecar of %s records' % (
                pusher.settings.url, pusher.repository, field.get('digest'), tarball.file_name)
        else:
            why = 'the sidecar of %s records no push to %s' % (tarball.file_name, pusher.repository)
        self.result['reasons'].append(why)

    def _publish_to_registry(self, tarball, published):
        """Push tarball's image unless its sidecar records a digest the registry has. published: the tarball is new."""
        pusher = self._pusher()
        if pusher is None:
            return
        self.step = 'pushing %s to %s' % (tarball.file_name, pusher.settings.url)
        try:
            if not published:
                self.result['registry'] = pusher.recorded(tarball.sidecar)
                if self.result['registry'] is not None:
                    return
                self._note_missing(pusher, tarball)
            check_recordable(tarball, self.request.signer)
            pusher.check_access()
            field = pusher.push(tarball)
            record(tarball, field, self.request.signer, self.request.mode)
        except Failure as failure:
            if published:
                why = 'the push was interrupted by SIGTERM.' if isinstance(failure, Interrupted) else failure.msg
                raise Failure('Published %s, but its sidecar records no registry digest: %s The next run pushes again.'
                              % (tarball.path, why), **self.result)
            raise Failure(failure.msg, **self.result)
        self.result.update(changed=True, registry=field)
