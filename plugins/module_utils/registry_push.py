# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Publishing a packaged image to an OCI registry (the tarball module's `registry` option).

The Host's daemon pushes the image as <url>/<namespace>/<env>:<timestamp> and moves :latest; the registry's manifest
is then read back (registry_client.py: capped, its digest checked) and its config must be the sidecar's image_id.
Only then is the digest recorded in the tarball's sidecar (signed again with the signing key). The local tags of that
repository are removed from the Host afterwards, whatever happened, so the Host keeps no extra references (the
image itself stays, as kohakuriver/<env>:base).
"""

from __future__ import annotations

import os
import re

from ansible_collections.kohakuriver.docker.plugins.module_utils import sidecar as sidecar_format
from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.client import DOCKER_ERRORS, APIError, explain, inspect_or_none
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import sidecar_image_ids
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import REGISTRY_LATEST_TAG
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_client import ManifestNotFound, RegistryClient

_STATUS_DIGEST = re.compile(r'digest: (sha256:[0-9a-f]{64})')
_PUSH_ERRORS = DOCKER_ERRORS + (OSError, ValueError)


class RegistryPush(object):
    """Pushing env's images to the registry of settings (registry_settings.RegistrySettings) through client's daemon."""

    def __init__(self, client, settings, env, docker_host, patient, progress=None):
        self.client = client
        self.progress = progress  # a progress.Progress: the bytes the daemon reports pushed
        self.settings = settings
        self.env = env
        self.docker_host = docker_host
        self.patient = patient  # a context manager that lifts the daemon client's timeout (packaging's _patient)
        self.repository = settings.repository(env)
        self.path = settings.path(env)
        self.registry = RegistryClient.from_settings(settings)

    def planned(self, timestamp):
        """The result of a push not made yet (check mode)."""
        return dict(repository=self.repository, tag=str(timestamp), digest=None)

    def recorded(self, sidecar):
        """The sidecar's registry field when it names this repository and the registry still has its digest, else None."""
        field = (sidecar or {}).get('registry')
        if not field or field.get('repository') != self.repository:
            return None
        return dict(field) if self.registry.exists(self.path, field['digest']) else None

    def check_access(self):
        """Reach the registry and its credentials before the daemon pushes: its failures are clearer than the daemon's."""
        self.registry.exists(self.path, REGISTRY_LATEST_TAG)

    def push(self, tarball):
        """Push the image of tarball (a store.Tarball with its sidecar), verify it, and record it in the sidecar.

        Returns the sidecar's registry field. A failure leaves the sidecar as it was.
        """
        sidecar = tarball.sidecar
        image = self._local_image(tarball)
        tag = str(tarball.timestamp)
        try:
            self.client.api.tag(image['Id'], self.repository, tag)
            self.client.api.tag(image['Id'], self.repository, REGISTRY_LATEST_TAG)
            if self.progress is not None:
                self.progress.start('pushing %s:%s' % (self.repository, tag), total=image.get('Size'), estimated=True)
            digest = self._push_tag(tag)
            self._verify(digest, sidecar['image_id'])
            self._push_tag(REGISTRY_LATEST_TAG)
        except _PUSH_ERRORS as exc:
            raise Failure('Pushing %s:%s from %s failed: %s.' % (self.repository, tag, self.docker_host, explain(exc).rstrip('.')))
        finally:
            self.untag_local()
        return dict(repository=self.repository, tag=tag, digest=digest)

    def _local_image(self, tarball):
        for image_id in sidecar_image_ids(tarball.sidecar):
            image = inspect_or_none(self.client, image_id)
            if image is not None:
                return image
        raise Failure('The image of %s (%s) is no longer on %s, so it cannot be pushed to %s; package again with force:'
                      ' true.' % (tarball.file_name, tarball.sidecar.get('image_id'), self.docker_host, self.settings.url))

    def _auth_config(self):
        if not self.settings.username:
            return None
        return dict(username=self.settings.username, password=self.settings.password, serveraddress=self.settings.url)

    def _push_tag(self, tag):
        """Push repository:tag; the digest the daemon reports. The daemon's error line is the Failure."""
        digest, pushed = None, {}
        with self.patient():
            for line in self.client.api.push(self.repository, tag, auth_config=self._auth_config(), stream=True, decode=True):
                if not isinstance(line, dict):
                    continue
                error = line.get('error') or (line.get('errorDetail') or {}).get('message')
                if error:
                    raise Failure('Pushing %s:%s from %s to registry %s failed: %s; check registry.url, the credentials and'
                                  ' that the daemon trusts the registry.'
                                  % (self.repository, tag, self.docker_host, self.settings.url, ' '.join(str(error).split())))
                self._count(line, pushed)
                aux = line.get('aux') if isinstance(line.get('aux'), dict) else {}
                found = aux.get('Digest') or _STATUS_DIGEST.search(str(line.get('status') or ''))
                if found:
                    digest = found if isinstance(found, str) else found.group(1)
        if not digest:
            raise Failure('The daemon at %s pushed %s:%s but reported no digest.' % (self.docker_host, self.repository, tag))
        return digest

    def _count(self, line, pushed):
        """Add what a 'Pushing' line says its layer reached since its last line (pushed: layer ID -> bytes)."""
        detail = line.get('progressDetail')
        if self.progress is None or line.get('status') != 'Pushing' or not isinstance(detail, dict):
            return
        current = detail.get('current')
        if isinstance(current, int) and current > pushed.get(line.get('id'), 0):
            self.progress.add(current - pushed.get(line.get('id'), 0))
            pushed[line.get('id')] = current

    def _verify(self, digest, image_id):
        try:
            manifest = self.registry.manifest(self.path, digest)
        except ManifestNotFound:
            raise Failure('Registry %s has no manifest %s@%s right after the daemon pushed it; is a proxy in between?'
                          % (self.settings.url, self.path, digest))
        if manifest.config_digest != image_id:
            raise Failure('Registry %s holds %s@%s with config %s, not the image %s that was pushed; nothing was recorded.'
                          % (self.settings.url, self.path, digest, manifest.config_digest, image_id))

    def untag_local(self):
        """Remove every local reference (tag or digest) of repository from the Host; the daemon refusing is fine."""
        try:
            found = self.client.api.images(name=self.repository)
        except _PUSH_ERRORS:
            return
        prefix = (self.repository + ':', self.repository + '@')
        for image in found:
            for reference in (image.get('RepoTags') or []) + (image.get('RepoDigests') or []):
                if reference.startswith(prefix):
                    try:
                        self.client.api.remove_image(reference, noprune=True)
                    except APIError:
                        pass


def check_recordable(tarball, signer):
    """Refuse (before any push) a signed sidecar that no signer can sign again: its signature would cover other bytes."""
    if signer is None and os.path.exists(store.signature_path(tarball.path)):
        raise Failure('%s is signed, so recording its registry digest needs signing_key (the key that signed it).'
                      % store.sidecar_path(tarball.path))


def record(tarball, field, signer, mode):
    """Write tarball's sidecar again with the registry field (and its signature, with signer); the new Sidecar.

    A signed sidecar without signer is refused: rewriting it would leave a signature over other bytes.
    """
    path = tarball.path
    checked = sidecar_format.validate(dict(tarball.sidecar, registry=field), store.sidecar_path(path))
    signature = store.signature_path(path)
    check_recordable(tarball, signer)
    raw = store.json_bytes(checked)
    if signer is not None:
        store.write_atomically(signature, signer.sign(raw, store.sidecar_path(path)), mode)
    store.write_atomically(store.sidecar_path(path), raw, mode)
    tarball.use_sidecar(checked)
    return checked
