# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: environment_marker
short_description: The record of what was applied to an environment container
version_added: 0.1.0
description:
  - The content of C(/etc/kohakuriver/environment.json), which the C(environment) role writes into the container
    (so it travels with the image) once a definition is applied.
  - It holds the definition without the content of its files (their C(dest), C(mode) and C(owner) stay), the
    package manager found, and the digest of each step (see P(kohakuriver.docker.environment_plan#filter)).
positional: marker_format, package_manager, digests
options:
  _input:
    description: The settled definition.
    type: dict
    required: true
  marker_format:
    description: The record format.
    type: str
    required: true
  package_manager:
    description: The package manager found in the container.
    type: str
    required: true
  digests:
    description: The digest of each step.
    type: dict
    required: true
author:
  - kohakuriver.docker contributors (@kohakuriver)
'''

EXAMPLES = r'''
- name: The record, as JSON
  ansible.builtin.debug:
    msg: "{{ definition | kohakuriver.docker.environment_marker('kohakuriver.docker/environment-v1', 'apt-get', plan.digests) | to_nice_json }}"
'''

RETURN = r'''
_value:
  description: The record, with keys C(format), C(name), C(image), C(package_manager), C(steps) and C(definition).
  type: dict
'''

from ansible.errors import AnsibleFilterError


def environment_marker(definition, marker_format, package_manager, digests):
    if not isinstance(definition, dict):
        raise AnsibleFilterError('environment_marker needs the settled definition (a dict)')
    files = [dict((key, value) for key, value in entry.items() if key != 'content') for entry in definition.get('files', [])]
    return dict(format=marker_format, name=definition['name'], image=definition['image'], package_manager=package_manager,
                steps=digests, definition=dict(definition, files=files))


class FilterModule(object):
    def filters(self):
        return {'environment_marker': environment_marker}
