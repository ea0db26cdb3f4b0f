#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: tarball_info
short_description: List the image tarballs on shared storage
version_added: 0.1.0
description:
  - Lists every tarball C(<env>-<timestamp>.tar) in O(tarball_dir), or those of one environment, newest first.
    This is KohakuRiver's C(kohakuriver docker tar list).
  - A tarball with a sidecar C(<env>-<timestamp>.tar.json), as the M(kohakuriver.docker.tarball) module
    writes, is listed with the sha256 and image ID the sidecar records, and RV(tarballs[].verified=true) when the
    sidecar is well-formed (every field of the right type) and the file has the size it records. The tarball's
    contents are not read here; M(kohakuriver.docker.image_sync) checks them before it relies on the sidecar.
    Tarballs made by KohakuRiver itself have no sidecar and are listed unverified.
  - A sidecar that is not well-formed, or a tarball that is a link leading out of O(tarball_dir), is listed
    unverified with the reason in RV(tarballs[].problem); the listing itself does not fail.
  - Hidden temporary files of packagings in progress, sidecars and lock files are never listed.
  - Reads the folder only, without contacting any Docker daemon, so it runs wherever the share is mounted.
  - The sidecar is a JSON object with the keys C(format) (V(kohakuriver.docker/tarball-v1)), C(env),
    C(timestamp), C(file), C(size), C(sha256) (of the whole file), C(image_id), C(repo_tags),
    C(archive_format) (V(docker-legacy) or V(oci)), C(config) and C(layer_members) (archive member names),
    C(layers) (diff IDs), C(members) (every regular member with the offset of its data, size and sha256),
    C(links), C(source) (container, container ID, Docker host name), C(engine) (version, API version),
    C(created), C(image_created), C(runtime_config) and C(container_changes) (what the next packaging compares), and
    C(registry) (C(repository), C(tag), C(digest)) once M(kohakuriver.docker.tarball) pushed the image with its
    O(kohakuriver.docker.tarball#module:registry) option.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.attributes
  - kohakuriver.docker.attributes.info_module
options:
  name:
    description:
      - Only the tarballs of this environment. C(env) never matches the tarballs of C(env-2).
    type: str
  tarball_dir:
    description:
      - The tarball folder on shared storage, an absolute path. A missing folder is an error.
    type: path
    default: /mnt/cluster-share/kohakuriver-containers
seealso:
  - module: kohakuriver.docker.tarball
'''

EXAMPLES = r'''
- name: List every tarball (kohakuriver docker tar list)
  kohakuriver.docker.tarball_info:
  register: listed

- name: The newest tarball of my-python-env
  kohakuriver.docker.tarball_info:
    name: my-python-env
    tarball_dir: /nfs/kohakuriver-containers
  register: mine

- name: Show its path
  ansible.builtin.debug:
    msg: "{{ (mine.tarballs | first).path if mine.tarballs else 'none yet' }}"
'''

RETURN = r'''
tarballs:
  description: The tarballs, newest first. Empty when there are none.
  returned: always
  type: list
  elements: dict
  contains:
    env:
      description: Environment name.
      type: str
      sample: my-python-env
    timestamp:
      description: The Unix time in the file name.
      type: int
      sample: 1700000000
    date:
      description: That time, ISO-8601 UTC.
      type: str
      sample: '2023-11-14T22:13:20Z'
    file:
      description: File name.
      type: str
      sample: my-python-env-1700000000.tar
    path:
      description: Absolute path.
      type: str
    size:
      description: Size in bytes.
      type: int
    verified:
      description:
        - True when a well-formed sidecar describes the tarball and the file has the size it records (when it records
          one). The contents are not checked here. False for tarballs made by KohakuRiver itself, and when
          RV(tarballs[].problem) is set.
      type: bool
    sha256:
      description: Hex sha256 of the whole file from the sidecar; null without sidecar.
      type: str
    image_id:
      description: ID of the image in the tarball from the sidecar; null without sidecar.
      type: str
    problem:
      description:
        - Why a sidecar that exists could not be used (invalid, or disagreeing with the file's size), or that the
          tarball is a link leading out of the folder; the tarball is then listed unverified. Else null.
      type: str
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.module_base import new_module, run
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_TARBALL_DIR
from ansible_collections.kohakuriver.docker.plugins.module_utils.store import InfoRequest, tarball_info

ARGUMENT_SPEC = dict(
    name=dict(type='str'),
    tarball_dir=dict(type='path', default=DEFAULT_TARBALL_DIR),
)


def operation(module):
    request = InfoRequest(module.params)
    return tarball_info(request)


def main():
    run(new_module(ARGUMENT_SPEC, supports_check_mode=True), operation)


if __name__ == '__main__':
    main()
