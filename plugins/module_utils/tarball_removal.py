# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tarball module with state=absent: delete one tarball of an environment, or all of them, each with its sidecar and signature.

No Docker daemon is contacted, unless purge: then the environment is going away, and its package lock and the images
packaging committed for it (images.remove_committed_images) go too.
"""

from __future__ import annotations

import os

from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.images import remove_committed_images
from ansible_collections.kohakuriver.docker.plugins.module_utils.locks import PACKAGE_PURPOSE, env_lock, lock_path
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import validate_env_name


class RemovalRequest(object):
    """The validated parameters of a state=absent run: env, folder, purge, tarball (a file name, or None for all)."""

    def __init__(self, params):
        self.purge = bool(params.get('purge'))
        self.tarball = params.get('tarball')
        if self.purge and self.tarball is not None:
            raise Failure('purge removes everything of the environment; give it without tarball.')
        self.env = validate_env_name(params['name'])
        self.folder = store.tarball_folder(params['tarball_dir'])


def remove_tarballs(request, check_mode=False, client=None):
    """Delete request.tarball of request.env, or every tarball of it, each with its sidecar; returns the result.

    With request.purge (and a client of the Host's daemon), the package lock and the committed images go too.
    """
    env, folder = request.env, request.folder
    result = dict(changed=False, tarball=None, removed=[], cleaned=[], removed_images=[], kept_images=[], save=None,
                  reasons=[], runner_update=None)
    if request.tarball is not None:
        found = store.named_tarball(folder, env, request.tarball)
        targets = [found] if found else []
        named = os.path.join(folder, request.tarball)
        orphans = [] if found else [path for path in [store.sidecar_path(named), store.signature_path(named)]
                                    if os.path.isfile(path)]
    elif os.path.isdir(folder):
        targets = [store.named_tarball(folder, env, tarball.file_name) for tarball in store.list_tarballs(folder, env)]
        orphans = []
    else:
        targets, orphans = [], []
    lock = lock_path(folder, env, PACKAGE_PURPOSE)
    if request.purge and os.path.lexists(lock):
        orphans.append(lock)
    before = [tarball.file_name for tarball in store.list_tarballs(folder, env)] if os.path.isdir(folder) else []
    gone = set(tarball.file_name for tarball in targets)
    result['diff'] = dict(before=dict(tarballs=before), after=dict(tarballs=[name for name in before if name not in gone]))
    if request.purge:
        result['removed_images'], result['kept_images'] = remove_committed_images(client, env, check_mode=check_mode)
    result['changed'] = bool(targets or orphans or result['removed_images'])
    if check_mode or not (targets or orphans):
        result['removed'] = [tarball.path for tarball in targets]
        result['cleaned'] = orphans if check_mode else []
        return result
    with env_lock(folder, env, purpose=PACKAGE_PURPOSE):
        for tarball in targets:
            if store.remove_tarball(tarball):
                result['removed'].append(tarball.path)
        # The lock file goes last, while held; a packaging that waited on it then finds the environment gone.
        result['cleaned'] = [path for path in orphans if store.remove_quietly(path)]
        store.fsync_folder(folder)
    return result
