# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Where and with what a container of an environment runs on a runner: the options task and vps share."""

    DOCUMENTATION = r'''
options:
  shared_dir:
    description: The shared storage root as the runner sees it; C(<shared_dir>/shared_data) is mounted at C(/shared).
    type: path
    default: /mnt/cluster-share
  tarball_dir:
    description: The tarball folder. Defaults to C(<shared_dir>/kohakuriver-containers).
    type: path
  state_dir:
    description: The runner-local folder for the per-environment sync locks.
    type: path
    default: /var/lib/kohakuriver-docker
  mounts:
    description:
      - Extra bind mounts, each C(source:target) or C(source:target:ro) (or C(:rw)), absolute paths without C(..) or
        C(:). The source must exist on the runner. C(/shared) is taken by the shared data folder.
    type: list
    elements: str
  cpus:
    description: CPU limit, in CPUs (V(0.5), V(2)), a finite number greater than 0; like C(docker run --cpus).
    type: float
  memory:
    description:
      - Memory limit, in bytes or with a unit (V(512m), V(4g)); like C(docker run --memory).
      - V(0) means no limit, as with C(docker run --memory 0) and M(kohakuriver.docker.container).
    type: str
  gpus:
    description: GPU device IDs (V([0, 1]) or UUIDs), or V([all]); like C(docker run --gpus device=0,1).
    type: list
    elements: str
  sync:
    description:
      - Sync the environment (as M(kohakuriver.docker.image_sync)) before the container is created. Otherwise the
        local image C(kohakuriver/<env>:base) must exist.
    type: bool
    default: true
  allow_stale:
    description:
      - When the tarball folder cannot be read, use the local image with a warning (see
        M(kohakuriver.docker.image_sync)).
    type: bool
    default: false
  pin:
    description:
      - Sync this kept tarball instead of the newest (see M(kohakuriver.docker.image_sync)'s
        O(kohakuriver.docker.image_sync#module:pin)), given by its file name (V(my-python-env-1700000000.tar)) or timestamp
        (V(1700000000)).
    type: str
'''
