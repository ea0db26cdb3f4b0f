#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container
short_description: Manage an environment container on the Host
version_added: 0.1.0
description:
  - Creates, starts, stops and removes the environment container C(kohakuriver-env-<name>), the long-lived container
    on the Host that a person or a pipeline customises before it is packaged into a tarball.
  - The container runs a small shell loop that keeps it alive on any image with a POSIX C(sh) (busybox, Alpine,
    Debian, ...), replacing the image's own entrypoint, with C(--init) so orphaned processes are reaped. C(docker stop)
    ends it at once.
  - It carries the labels C(io.kohakuriver.docker.managed=true) and C(io.kohakuriver.docker.env=<name>). A container
    that has the name but not the managed label (made by hand, or by KohakuRiver itself) is I(foreign) and is never
    started, stopped, recreated or removed unless O(adopt=true).
  - An existing container is B(never recreated silently). When its options differ from the request, it is kept, the
    result lists the differences in RV(drift) and a warning is shown; O(recreate=true) replaces it on purpose.
  - Only the options given are compared, so a task that names just the environment never reports drift.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.attributes
attributes:
  check_mode:
    support: full
    details:
      - Nothing is created, pulled, started, stopped or removed. An image that would be pulled is looked up in its
        registry without pulling it, so a missing image fails in check mode too. With O(pull=always), check mode
        compares with the image already on the Host.
  diff_mode:
    support: full
    details:
      - The diff shows the state, the image and each option given, before and after.
  idempotent:
    support: full
    details:
      - With O(pull=always) a run is changed when the pull brought a newer image; the container itself is kept and
        the newer image is reported as drift.
options:
  name:
    description:
      - The environment name. The container is named C(kohakuriver-env-<name>).
      - Lowercase letters and digits, optionally separated by single C(.), C(_), C(__) or runs of C(-), starting and
        ending with a letter or digit, at most 64 characters. Anything else fails before Docker is called.
    type: str
    required: true
  image:
    description:
      - The image to create the container from, for example V(python:3.11-slim).
      - Required when the container must be created. When the container exists, a different image is reported as
        drift, and so is the same name now pointing at another image ID.
    type: str
  state:
    description:
      - V(started) creates the container when missing and makes sure it runs (a paused one is unpaused).
      - V(present) creates it when missing (without starting it) and leaves an existing one as it is.
      - V(stopped) creates it when missing and makes sure it does not run.
      - V(absent) stops and removes the container. Its tarballs and images are never touched; a missing container is
        not an error.
    type: str
    choices: [started, present, stopped, absent]
    default: started
  pull:
    description:
      - V(missing) pulls the image only when a container is about to be created from it and the Host lacks it.
      - V(always) pulls on every run with an O(image), also for an existing container, whose image is then compared
        with the fresh pull (a newer image is drift, never a silent recreate).
      - V(never) uses only images already on the Host; creating from a missing image fails.
    type: str
    choices: [missing, always, never]
    default: missing
  env:
    description:
      - Environment variables of the container. Values are turned into strings.
      - Drift compares only the variables given here; variables set by the image are ignored.
    type: dict
  labels:
    description:
      - Labels added to the two labels the collection sets itself (which cannot be given here).
      - Drift compares only the labels given here.
    type: dict
  mounts:
    description:
      - Bind mounts and volumes. When given, the container's mounts must be exactly these (compared by target);
        V([]) asks for none.
    type: list
    elements: dict
    suboptions:
      source:
        description:
          - An absolute path on the Docker host (bind) or a volume name (volume).
        type: str
        required: true
      target:
        description: The absolute path inside the container.
        type: str
        required: true
      type:
        description: The kind of mount.
        type: str
        choices: [bind, volume]
        default: bind
      read_only:
        description: Mount read-only.
        type: bool
        default: false
  cpus:
    description:
      - CPU limit in CPUs (V(1.5) is one and a half CPUs), like C(docker run --cpus). V(0) means no limit.
    type: float
  memory:
    description:
      - Memory limit, a number of bytes or a number with V(b), V(k), V(m) or V(g) (V(512m)), like
        C(docker run --memory). V(0) means no limit.
    type: str
  restart_policy:
    description:
      - What the Docker daemon does when the container stops or the daemon restarts.
    type: str
    choices: ['no', always, on-failure, unless-stopped]
  recreate:
    description:
      - Replace a container whose options differ from the request (see RV(drift)) with a new one made from the
        request. B(Everything changed inside the old container since it was created is lost), so package it first.
      - The old container is removed only once the new one is created (and started); if that fails, the old one is
        put back as it was.
      - Without drift nothing is recreated, so the task stays idempotent.
    type: bool
    default: false
  adopt:
    description:
      - Manage a foreign container of this name (one without the managed label) as if this collection had made it,
        that is start, stop, remove it and compare its options.
      - Docker cannot add labels to an existing container, so adoption lasts for this task only; give
        O(adopt=true) on every task that manages it, or combine it with O(recreate=true) to replace it with a
        labelled container (losing what was changed inside it).
    type: bool
    default: false
notes:
  - An unchanged run makes one container inspect and, when O(image) is given, one image inspect.
seealso:
  - module: kohakuriver.docker.container_info
  - module: kohakuriver.docker.container_exec
'''

EXAMPLES = r'''
- name: Create and start the environment container my-python-env
  kohakuriver.docker.container:
    name: my-python-env
    image: python:3.11-slim

- name: Same, on a Host reached over SSH, with limits and a shared folder
  kohakuriver.docker.container:
    docker_host: ssh://root@host.example.com
    name: my-python-env
    image: python:3.11-slim
    cpus: 2
    memory: 4g
    restart_policy: unless-stopped
    mounts:
      - source: /mnt/cluster-share/shared_data
        target: /shared
    env:
      PIP_NO_CACHE_DIR: "1"

- name: Stop it
  kohakuriver.docker.container:
    name: my-python-env
    state: stopped

- name: Take over a container that KohakuRiver made, and start it
  kohakuriver.docker.container:
    name: legacy-env
    adopt: true

- name: Replace a container whose options drifted (loses changes made inside it)
  kohakuriver.docker.container:
    name: my-python-env
    image: python:3.12-slim
    recreate: true

- name: Remove it (its tarballs stay)
  kohakuriver.docker.container:
    name: my-python-env
    state: absent
'''

RETURN = r'''
container:
  description:
    - The environment container after the task (in check mode, as it is now).
    - After O(state=absent), RV(container.status) is V(absent) and the other keys describe the removed container.
  returned: success
  type: dict
  contains:
    id:
      description: Container ID; V(null) when there is no container.
      type: str
      sample: 3f4e...
    name:
      description: Container name.
      type: str
      sample: kohakuriver-env-my-python-env
    env:
      description: Environment name.
      type: str
      sample: my-python-env
    image:
      description: The image name the container was created from.
      type: str
      sample: python:3.11-slim
    image_id:
      description: The ID of that image.
      type: str
      sample: sha256:9c7a...
    status:
      description: Docker's status (V(created), V(running), V(paused), V(exited), ...) or V(absent).
      type: str
      sample: running
    running:
      description: Whether the container runs (or is paused or restarting).
      type: bool
    created:
      description: When the container was created, UTC.
      type: str
      sample: '2026-11-28T15:00:00Z'
    labels:
      description: All labels of the container.
      type: dict
    managed:
      description: Whether the container carries the managed label (false for an adopted container).
      type: bool
drift:
  description: The requested options the existing container does not have. Empty when it matches.
  returned: success
  type: list
  elements: dict
  sample: [{option: memory, wanted: 4294967296, actual: 0}]
  contains:
    option:
      description: >-
        V(image), V(image_id) (same image name, another image), V(env), V(labels), V(mounts), V(cpus), V(memory)
        or V(restart_policy).
      type: str
    wanted:
      description: The requested value (for env and labels, only the differing keys).
      type: raw
    actual:
      description: The container's value.
      type: raw
actions:
  description: What the task did, or would do in check mode, in order.
  returned: success
  type: list
  elements: str
  sample: [pull, create, start]
adopted:
  description: Whether the container was foreign and managed because of O(adopt=true).
  returned: success
  type: bool
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.container import ensure
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import (
    MOUNT_TYPES, RESTART_POLICIES, Request,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run

ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    image=dict(type='str'),
    state=dict(type='str', default='started', choices=['started', 'present', 'stopped', 'absent']),
    pull=dict(type='str', default='missing', choices=['missing', 'always', 'never']),
    env=dict(type='dict'),
    labels=dict(type='dict'),
    mounts=dict(type='list', elements='dict', options=dict(
        source=dict(type='str', required=True),
        target=dict(type='str', required=True),
        type=dict(type='str', default='bind', choices=list(MOUNT_TYPES)),
        read_only=dict(type='bool', default=False),
    )),
    cpus=dict(type='float'),
    memory=dict(type='str'),
    restart_policy=dict(type='str', choices=list(RESTART_POLICIES)),
    recreate=dict(type='bool', default=False),
    adopt=dict(type='bool', default=False),
)


def operation(module):
    request = Request(module.params)
    return ensure(client_for(module), request, module.check_mode)


def main():
    run(new_module(ARGUMENT_SPEC, supports_check_mode=True), operation)


if __name__ == '__main__':
    main()
