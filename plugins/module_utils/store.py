# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tarball folder on shared storage: which tarballs exist, their sidecars, and their checksums.

A tarball is '<env>-<unix seconds>.tar' (KohakuRiver's name, loadable by plain 'docker load -i'). Its sidecar
'<env>-<unix seconds>.tar.json' records what we know about it (see SIDECAR_FORMAT); KohakuRiver's own tarballs
have none and count as unverified. Temporary files start with '.' and never match the tarball pattern.
"""

from __future__ import annotations

import hashlib
import json
import os

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import parse_tarball_name

SIDECAR_SUFFIX = '.json'
SIDECAR_FORMAT = 'kohakuriver.docker/tarball-v1'
CHUNK_SIZE = 2 * 1024 * 1024


class Tarball(object):
    """One tarball file found in the folder, with its sidecar when there is one."""

    def __init__(self, folder, file_name, env, timestamp):
        self.folder = folder
        self.file_name = file_name
        self.env = env
        self.timestamp = timestamp
        self.path = os.path.join(folder, file_name)
        self._sidecar = None
        self._sidecar_read = False

    @property
    def sidecar_path(self):
        return sidecar_path(self.path)

    @property
    def sidecar(self):
        """The sidecar dict, or None when the tarball has none (a KohakuRiver tarball)."""
        if not self._sidecar_read:
            self._sidecar = read_sidecar(self.path)
            self._sidecar_read = True
        return self._sidecar

    def __repr__(self):
        return 'Tarball(%r)' % self.path


def sidecar_path(tarball_path):
    return tarball_path + SIDECAR_SUFFIX


def read_sidecar(tarball_path):
    """The sidecar of tarball_path as a dict, None when absent; a sidecar that cannot be read is a Failure."""
    path = sidecar_path(tarball_path)
    try:
        with open(path, 'rb') as handle:
            data = json.loads(handle.read().decode('utf-8'))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise Failure('Cannot read the sidecar %s: %s. Remove it to treat the tarball as unverified.' % (path, exc))
    if not isinstance(data, dict) or data.get('format') != SIDECAR_FORMAT:
        raise Failure('%s is not a %s sidecar. Remove it to treat the tarball as unverified.' % (path, SIDECAR_FORMAT))
    return data


def list_tarballs(folder, env=None):
    """Every tarball in folder (of one env when given), newest first. Missing folder is a Failure."""
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        raise Failure('Tarball folder %s does not exist; create it or set tarball_dir.' % folder)
    except OSError as exc:
        raise Failure('Cannot read tarball folder %s: %s.' % (folder, exc.strerror))
    found = []
    for file_name in names:
        parsed = parse_tarball_name(file_name, env)
        if parsed and os.path.isfile(os.path.join(folder, file_name)):
            found.append(Tarball(folder, file_name, parsed[0], parsed[1]))
    found.sort(key=lambda tarball: (tarball.timestamp, tarball.env), reverse=True)
    return found


def newest_tarball(folder, env):
    tarballs = list_tarballs(folder, env)
    return tarballs[0] if tarballs else None


def sha256_of(path, chunk_size=CHUNK_SIZE):
    """(hex sha256, size in bytes) of a file, read in chunks so memory stays flat."""
    digest = hashlib.sha256()
    size = 0
    with open(path, 'rb') as handle:
        while True:
            chunk = handle.read(chunk_size)
            if not chunk:
                break
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size
