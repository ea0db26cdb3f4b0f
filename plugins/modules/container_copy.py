#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_copy
short_description: Write a file into an environment container
version_added: 0.1.0
description:
  - Makes O(dest) inside the environment container C(kohakuriver-env-<name>) hold O(content), with O(mode) and
    O(owner) and O(group), through the Docker archive API. No program is needed in the container (not even a shell),
    and the container may be stopped.
  - The file is read back first (its owner, mode and content, compared while it streams, so a large file is never
    held in memory) and written only when something differs.
  - Folders missing above O(dest) are created, owned by root with mode C(0755). A symbolic link at O(dest) (or above
    it) is followed, as a shell's C(cat > dest) would.
  - The file is replaced as a whole (a new file, as C(docker cp) makes), not rewritten in place.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.attributes
attributes:
  check_mode:
    support: full
    details:
      - A container that does not exist yet (because an earlier task in check mode did not create it) gives a warning
        and reports changed instead of failing.
  diff_mode:
    support: full
    details:
      - The content before and after, when both are text of at most 104448 bytes; the headers name the mode and owner.
  idempotent:
    support: full
options:
  name:
    description:
      - The environment name; the file is written into C(kohakuriver-env-<name>).
    type: str
    required: true
  dest:
    description:
      - Absolute path of the file inside the container.
    type: str
    required: true
  content:
    description:
      - The text the file holds, written as UTF-8, exactly as given (no newline is added).
    type: str
    required: true
  mode:
    description:
      - Octal mode of the file, quoted (V("0644")) or an octal number.
      - Without it, an existing file keeps its mode and a new one gets C(0644).
    type: raw
  owner:
    description:
      - Owner of the file, a user name (looked up in the container's C(/etc/passwd)) or a number.
      - Without it, an existing file keeps its owner and a new one belongs to root.
    type: str
  group:
    description:
      - Group of the file, a group name (looked up in the container's C(/etc/group)) or a number.
      - Without it, an existing file keeps its group and a new one belongs to root's group C(0).
    type: str
seealso:
  - module: kohakuriver.docker.container_exec
  - module: kohakuriver.docker.container
'''

EXAMPLES = r'''
- name: Configure the application of my-python-env
  kohakuriver.docker.container_copy:
    name: my-python-env
    dest: /etc/myapp/settings.ini
    content: |
      [main]
      threads = 4
    mode: "0644"

- name: A key readable by one user only
  kohakuriver.docker.container_copy:
    name: my-python-env
    dest: /home/app/.config/token
    content: "{{ app_token }}"
    mode: "0600"
    owner: app
    group: app
'''

RETURN = r'''
container:
  description: The container name.
  returned: always
  type: str
  sample: kohakuriver-env-my-python-env
dest:
  description: O(dest), normalised.
  returned: always
  type: str
  sample: /etc/myapp/settings.ini
path:
  description: The file written, after following symbolic links.
  returned: when the container exists
  type: str
  sample: /etc/myapp/settings.ini
size:
  description: Size of the content in bytes.
  returned: when the container exists
  type: int
  sample: 26
mode:
  description: The file's octal mode (as it is, or as it would be in check mode).
  returned: when the container exists
  type: str
  sample: '0644'
uid:
  description: The file's owner.
  returned: when the container exists
  type: int
  sample: 0
gid:
  description: The file's group.
  returned: when the container exists
  type: int
  sample: 0
msg:
  description: Why nothing could be compared (check mode, the container does not exist yet).
  returned: when the container does not exist in check mode
  type: str
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.container_files import CopyRequest, copy_into
from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run

ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    dest=dict(type='str', required=True),
    content=dict(type='str', required=True),
    mode=dict(type='raw'),
    owner=dict(type='str'),
    group=dict(type='str'),
)


def operation(module):
    request = CopyRequest(module.params)
    return copy_into(client_for(module), request, module.check_mode)


def main():
    run(new_module(ARGUMENT_SPEC, supports_check_mode=True), operation)


if __name__ == '__main__':
    main()
