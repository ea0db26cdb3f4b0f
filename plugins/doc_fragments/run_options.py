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
    description:
      - The GPUs the container gets, as a device request for the runner's GPU runtime (the NVIDIA Container Toolkit),
        like C(docker run --gpus).
      - Device IDs (V([0, 1]), or a comma-separated string V(0,1), or UUIDs) for C(--gpus device=0,1); V([all]) for
        C(--gpus all); V([count=2]) for any two (C(--gpus count=2)).
      - Checked against O(available_gpus) when that is given.
      - "A runner without the toolkit refuses the container when it starts: the task or session fails with the
        daemon's one line (for example C(could not select device driver \"\" with capabilities: [[gpu]])) and what
        to install. The C(kohakuriver.docker.runner) role checks runners that declare GPUs."
    type: list
    elements: str
  available_gpus:
    description:
      - The GPU IDs the runner declares (the inventory's C(kohakuriver_gpus), which the C(task_submit) and C(vps)
        playbooks pass here). O(gpus) must name only these, V(all) or a count no larger, and nothing when this is
        empty. Not checked when not given.
    type: list
    elements: str
  shm_size:
    description:
      - Size of C(/dev/shm), in bytes or with a unit (V(8g)); like C(docker run --shm-size). Docker's default is 64 MiB,
        too small for PyTorch's data loader workers.
    type: str
  ipc_mode:
    description:
      - The IPC namespace - V(private), V(shareable), V(host), V(none) or V(container:<name or ID>); like
        C(docker run --ipc). The daemon's default when not given.
    type: str
  ulimits:
    description:
      - Resource limits, each C(name:soft) or C(name:soft:hard) (V(-1) is unlimited), like C(docker run --ulimit) and
        community.docker's C(ulimits), for example V(memlock:-1:-1) (RDMA, pinned memory) or V(nofile:65536:65536).
    type: list
    elements: str
  devices:
    description:
      - Host devices in the container, each C(/dev/host), C(/dev/host:/dev/inside) or C(/dev/host:/dev/inside:rwm)
        (permissions from C(r), C(w), C(m)); like C(docker run --device), for example V(/dev/infiniband/uverbs0).
    type: list
    elements: str
  capabilities:
    description:
      - Linux capabilities to add, like C(docker run --cap-add) and community.docker's C(capabilities) - V(IPC_LOCK),
        V(SYS_PTRACE) (the C(CAP_) prefix may be given; names are upper-cased).
    type: list
    elements: str
    aliases: [cap_add]
  runtime:
    description:
      - The OCI runtime, like C(docker run --runtime) - V(nvidia) for the NVIDIA runtime where it is not the default.
        The daemon must know it (C(docker info) Runtimes), or the container is refused when it is created.
    type: str
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
  allowed_signers:
    description:
      - Path on the runner of the allowed-signers file that lists the Host's public key; the sync checks the
        tarball's signature against it (see M(kohakuriver.docker.image_sync)).
    type: path
  require_signature:
    description:
      - Refuse to sync a tarball without the Host's signature (see M(kohakuriver.docker.image_sync)). Needs
        O(allowed_signers).
    type: bool
    default: false
  revoked_keys:
    description:
      - Path on the runner of revoked keys (a KRL or public key lines) whose signatures are refused. Needs
        O(allowed_signers).
    type: path
  pin:
    description:
      - Sync this kept tarball instead of the newest (see M(kohakuriver.docker.image_sync)'s
        O(kohakuriver.docker.image_sync#module:pin)), given by its file name (V(my-python-env-1700000000.tar)) or timestamp
        (V(1700000000)).
    type: str
  source:
    description:
      - Where the sync takes the image from (with O(registry)), as M(kohakuriver.docker.image_sync)'s
        O(kohakuriver.docker.image_sync#module:source).
    type: str
    choices: [auto, registry, share]
    default: auto
  fallback_to_share:
    description:
      - Sync from the share when the registry fails before anything changed, as M(kohakuriver.docker.image_sync)'s
        O(kohakuriver.docker.image_sync#module:fallback_to_share).
    type: bool
    default: false
'''
