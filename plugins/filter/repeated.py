# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: repeated
short_description: The items a list holds more than once
version_added: 0.1.0
description:
  - Each item that occurs more than once in the list, once, in the order of its second occurrence.
options:
  _input:
    description: The list.
    type: list
    elements: raw
    required: true
author:
  - kohakuriver.docker contributors (@kohakuriver)
'''

EXAMPLES = r'''
- name: Names declared twice
  ansible.builtin.debug:
    msg: "{{ ['a', 'b', 'a', 'c', 'b', 'a'] | kohakuriver.docker.repeated }}"
  # [a, b]
'''

RETURN = r'''
_value:
  description: The repeated items.
  type: list
  elements: raw
'''


def repeated(items):
    seen, twice = [], []
    for item in items:
        if item in seen and item not in twice:
            twice.append(item)
        seen.append(item)
    return twice


class FilterModule(object):
    def filters(self):
        return {'repeated': repeated}
