# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: environment_plan
short_description: Which steps of an environment definition must run, from what its container records
version_added: 0.1.0
description:
  - Digests each step of a settled environment definition (the C(environment) role's
    C(kohakuriver_environment_definition)) and compares them with the digests recorded in the container's
    C(/etc/kohakuriver/environment.json).
  - A step runs when its digest differs from the recorded one, and so does every later step (as with the layers of a
    Dockerfile). A record that is missing, not JSON, or of another O(marker_format) records nothing.
  - The digest of a step is the SHA-256 of its part of the definition as JSON with sorted keys; the fingerprint is
    the SHA-256 of those digests, which the role records beside the tarball that holds the definition.
positional: marker, steps, marker_format
options:
  _input:
    description: The settled definition, a dict with one key per step.
    type: dict
    required: true
  marker:
    description: The text of the container's record (empty when there is none).
    type: str
    required: true
  steps:
    description: The steps in the order they run.
    type: list
    elements: str
    required: true
  marker_format:
    description: The record format this role writes; a record of another format counts as none.
    type: str
    required: true
author:
  - kohakuriver.docker contributors (@kohakuriver)
'''

EXAMPLES = r'''
- name: Plan the customisation
  ansible.builtin.set_fact:
    plan: >-
      {{ definition | kohakuriver.docker.environment_plan(marker_read.stdout | default(''),
         ['image', 'system_packages', 'files'], 'kohakuriver.docker/environment-v1') }}
  # plan.steps: [files] when only the files changed; plan.digests: {image: 9f2c..., ...}; plan.fingerprint: 0b1e...
'''

RETURN = r'''
_value:
  description: The plan.
  type: dict
  contains:
    steps:
      description: The steps to run, in order; empty when the container holds the definition.
      type: list
      elements: str
    digests:
      description: The digest of each step of the definition.
      type: dict
    fingerprint:
      description: The digest of all digests.
      type: str
'''

import hashlib
import json

from ansible.errors import AnsibleFilterError

try:
    from ansible.plugins.filter.core import to_json
except ImportError:  # pragma: no cover
    def to_json(value, **kwargs):
        return json.dumps(value, **kwargs)


def digest(value):
    """What `value | to_json(sort_keys=true) | hash('sha256')` gives in a template."""
    return hashlib.sha256(to_json(value, sort_keys=True).encode('utf-8', 'surrogateescape')).hexdigest()


def recorded_steps(marker, marker_format):
    """The step digests a record holds; {} when it is empty, not a JSON object, or of another format."""
    if not isinstance(marker, str) or not marker.lstrip().startswith('{'):
        return {}
    try:
        record = json.loads(marker)
    except ValueError:
        return {}
    if not isinstance(record, dict) or record.get('format', '') != marker_format:
        return {}
    steps = record.get('steps', {})
    return steps if isinstance(steps, dict) else {}


def environment_plan(definition, marker, steps, marker_format):
    if not isinstance(definition, dict):
        raise AnsibleFilterError('environment_plan needs the settled definition (a dict), not %r' % type(definition).__name__)
    missing = [step for step in steps if step not in definition]
    if missing:
        raise AnsibleFilterError('environment_plan: the definition has no %s' % ', '.join(missing))
    digests = dict((step, digest(definition[step])) for step in steps)
    applied = recorded_steps(marker, marker_format)
    planned, dirty = [], False
    for step in steps:
        dirty = dirty or applied.get(step, '') != digests[step]
        if dirty:
            planned.append(step)
    return dict(steps=planned, digests=digests, fingerprint=digest(digests))


class FilterModule(object):
    def filters(self):
        return {'environment_plan': environment_plan}
