# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The validated parameters of a packaging run (tarball with state=present): checked before any Docker call."""

from __future__ import annotations

import re

from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import validate_env_name
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import RegistrySettings
from ansible_collections.kohakuriver.docker.plugins.module_utils.signing import Signer

IMAGE_TIMEOUT = 1800
LAYOUTS = ('chain', 'flat')
DEFAULT_MAX_LAYERS = 60
# overlay2 mounts at most about 125 layers (the kernel's page for the mount options); leave room for the base image.
MAX_LAYERS_LIMIT = 120


def parse_mode(mode):
    """The file mode for tarballs and sidecars: octal string or int, owner-readable, never world-writable."""
    if isinstance(mode, int):
        value = mode
    else:
        text = str(mode).strip()
        if not re.match(r'^0?o?[0-7]{3,4}$', text):
            raise Failure('mode %r is not an octal file mode; give one like 0644.' % (mode,))
        value = int(text.replace('o', ''), 8)
    if value > 0o777:
        raise Failure('mode %s sets special bits; give a plain mode like 0644.' % oct(value))
    if value & 0o002:
        raise Failure('mode %s would make tarballs world-writable; give one like 0644.' % oct(value))
    if not value & 0o400:
        raise Failure('mode %s would make tarballs unreadable by their owner; give one like 0644.' % oct(value))
    return value


class PackagingRequest(object):
    """The validated parameters of a state=present run. Validation happens here, before any Docker call."""

    def __init__(self, params):
        if params.get('purge'):
            raise Failure('purge goes with state=absent.')
        if params.get('tarball') is not None:
            raise Failure('tarball names a tarball to delete; use it with state=absent.')
        self.env = validate_env_name(params['name'])
        self.folder = store.tarball_folder(params['tarball_dir'])
        self.keep = params['keep']
        self.protect = store.protected_timestamps(self.env, params.get('protect'))
        self.force = params['force']
        self.mode = parse_mode(params['mode'])
        self.pause = params['pause']
        self.stop_timeout = params['stop_timeout']
        self.adopt = bool(params.get('adopt'))
        self.image_timeout = params.get('image_timeout') or IMAGE_TIMEOUT
        self.docker_host = params.get('docker_host') or 'the Docker host'
        self.signer = Signer(params['signing_key']) if params.get('signing_key') else None
        if self.keep < 1:
            raise Failure('keep is %d; keep at least 1 tarball (the new one).' % self.keep)
        self.progress_file = params.get('progress_file')
        self.registry = RegistrySettings.from_option(params.get('registry'))
        self.layout = params.get('layout') or 'chain'
        if self.layout not in LAYOUTS:
            raise Failure('layout %r is not one of %s.' % (self.layout, ', '.join(LAYOUTS)))
        self.max_layers = DEFAULT_MAX_LAYERS if params.get('max_layers') is None else params['max_layers']
        if not isinstance(self.max_layers, int) or not 2 <= self.max_layers <= MAX_LAYERS_LIMIT:
            raise Failure('max_layers is %r; give a number of layers from 2 to %d (overlay2 mounts about 125).'
                          % (self.max_layers, MAX_LAYERS_LIMIT))
