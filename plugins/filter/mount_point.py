# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: mount_point
short_description: The mount point of the file system that holds a path
version_added: 0.1.0
description:
  - Of the mount points given (for example C(ansible_facts.mounts | map(attribute='mount'))), the longest one that
    holds the absolute path, so V(/) when no other does. Trailing slashes are ignored.
  - The path is taken as written; resolve symbolic links first (the C(runner) role uses the C(lnk_source) of
    M(ansible.builtin.stat)).
positional: mounts
options:
  _input:
    description: An absolute path.
    type: str
    required: true
  mounts:
    description: Mount points.
    type: list
    elements: str
    required: true
author:
  - kohakuriver.docker contributors (@kohakuriver)
'''

EXAMPLES = r'''
- name: Where is the shared storage mounted?
  ansible.builtin.debug:
    msg: "{{ '/mnt/cluster-share/kohakuriver-containers' | kohakuriver.docker.mount_point(['/', '/mnt/cluster-share']) }}"
  # /mnt/cluster-share
'''

RETURN = r'''
_value:
  description: The mount point holding the path.
  type: str
'''


def mount_point(path, mounts):
    path = path.rstrip('/') + '/'
    found = '/'
    for mount in mounts:
        if path.startswith(mount.rstrip('/') + '/') and len(mount) > len(found):
            found = mount
    return found


class FilterModule(object):
    def filters(self):
        return {'mount_point': mount_point}
