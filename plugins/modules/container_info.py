#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_info
short_description: List the environment containers on the Host
version_added: 0.1.0
description:
  - Lists every environment container (C(kohakuriver-env-*)) on one Docker daemon, running or not, with one API call (and two more for RV(engine)).
  - Foreign containers (the name without the collection's managed label, for example made by KohakuRiver itself)
    are listed too, with RV(containers[].managed=false).
  - Never changes anything.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.attributes
  - kohakuriver.docker.attributes.info_module
options:
  name:
    description:
      - Only the environment container of this environment name. Without it, all of them.
    type: str
seealso:
  - module: kohakuriver.docker.container
'''

EXAMPLES = r'''
- name: List the environment containers on the Host
  kohakuriver.docker.container_info:
  register: envs

- name: Show them
  ansible.builtin.debug:
    msg: "{{ envs.containers | map(attribute='env') | list }}"

- name: Is my-python-env running?
  kohakuriver.docker.container_info:
    name: my-python-env
  register: one
'''

RETURN = r'''
containers:
  description: The environment containers, sorted by name. Empty when there are none.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Container ID.
      type: str
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
    status:
      description: Docker's state (V(created), V(running), V(paused), V(exited), ...).
      type: str
      sample: running
    status_text:
      description: Docker's status line.
      type: str
      sample: Up 3 hours
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
      description: Whether this collection made the container (false for a foreign one).
      type: bool
engine:
  description: The Docker daemon's version, as the collection's connection options reach it.
  returned: always
  type: dict
  contains:
    version:
      description: The Docker Engine version.
      type: str
      sample: 27.5.1
    api_version:
      description: The highest API version the daemon speaks.
      type: str
      sample: '1.47'
    runtimes:
      description: The OCI runtimes the daemon knows (C(docker info) Runtimes), V(nvidia) among them where the NVIDIA
        Container Toolkit configured Docker for it.
      type: list
      elements: str
      sample: [io.containerd.runc.v2, nvidia, runc]
    default_runtime:
      description: The runtime containers get when none is asked for.
      type: str
      sample: runc
    cdi_spec_dirs:
      description: The folders the daemon reads CDI device specifications from (empty when CDI is off or the daemon is
        older than Docker 25).
      type: list
      elements: str
      sample: [/etc/cdi, /var/run/cdi]
    cdi_devices:
      description: The CDI devices the daemon found (Docker 28.2 and later; empty otherwise).
      type: list
      elements: str
      sample: [nvidia.com/gpu=0, nvidia.com/gpu=all]
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.container import ContainerListRequest, list_containers
from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run

ARGUMENT_SPEC = dict(
    name=dict(type='str'),
)


def operation(module):
    request = ContainerListRequest(module.params)
    return list_containers(client_for(module), request)


def main():
    run(new_module(ARGUMENT_SPEC, supports_check_mode=True), operation)


if __name__ == '__main__':
    main()
