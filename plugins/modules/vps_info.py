#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vps_info
short_description: List the VPS sessions on a runner with their SSH endpoints
version_added: 0.1.0
description:
  - Lists the VPS sessions (containers C(kohakuriver-vps-<name>) made by M(kohakuriver.docker.vps)) on one Docker
    daemon, running or not, with one API call. Each comes with its environment, status, port, a ready C(ssh) command
    line and the session's host key.
  - Never changes anything.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.attributes
  - kohakuriver.docker.attributes.info_module
options:
  name:
    description: Only this session.
    type: str
    aliases: [session]
  env:
    description: Only sessions of this environment.
    type: str
  ssh_host:
    description:
      - The host name or address users connect to, for RV(sessions[].ssh_command) (see the O(kohakuriver.docker.vps#module:ssh_host)
        option of M(kohakuriver.docker.vps)).
    type: str
seealso:
  - module: kohakuriver.docker.vps
'''

EXAMPLES = r'''
- name: List the VPS sessions on the runner
  kohakuriver.docker.vps_info:
    ssh_host: "{{ ansible_host | default(inventory_hostname) }}"
  register: found

- name: Show how to reach each one
  ansible.builtin.debug:
    msg: "{{ found.sessions | map(attribute='ssh_command') | list }}"
'''

RETURN = r'''
sessions:
  description: The sessions, sorted by name. Empty when there are none.
  returned: always
  type: list
  elements: dict
  contains:
    session:
      description: The session name.
      type: str
      sample: alice-dev
    container:
      description: The container name.
      type: str
      sample: kohakuriver-vps-alice-dev
    id:
      description: The container ID.
      type: str
    env:
      description: The environment.
      type: str
      sample: python-data-science
    image:
      description: The image the session was created from.
      type: str
    image_id:
      description: The ID of that image.
      type: str
    status:
      description: Docker's state (V(running), V(exited), ...).
      type: str
      sample: running
    running:
      description: Whether the session runs.
      type: bool
    created:
      description: When the container was created (UTC).
      type: str
    bind_address:
      description: The runner address the port is bound to.
      type: str
      sample: 0.0.0.0
    port:
      description: The runner's port for the session's SSH.
      type: int
      sample: 40022
    host:
      description: Where users connect.
      type: str
    ssh_command:
      description: A ready command line to log in.
      type: str
      sample: ssh -p 40022 root@runner1.example.org
    host_key:
      description: The session's SSH host key (public).
      type: str
    host_key_fingerprint:
      description: Its fingerprint, as C(ssh) shows it.
      type: str
    known_hosts:
      description: A C(known_hosts) line for the session.
      type: str
    problem:
      description:
        - What is wrong with the session's labels, when something is (for example a host key label that is not an SSH
          public key). The other sessions are listed as usual; this one lacks the fields the label would give
          (RV(sessions[].host_key), RV(sessions[].host_key_fingerprint), RV(sessions[].known_hosts)).
      type: str
      returned: only for a session whose labels are broken
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run
from ansible_collections.kohakuriver.docker.plugins.module_utils.vps_list import VpsListRequest, list_sessions

ARGUMENT_SPEC = dict(
    name=dict(type='str', aliases=['session']),
    env=dict(type='str'),
    ssh_host=dict(type='str'),
)


def operation(module):
    request = VpsListRequest(module.params)
    return list_sessions(client_for(module), request)


def main():
    run(new_module(ARGUMENT_SPEC, supports_check_mode=True), operation)


if __name__ == '__main__':
    main()
