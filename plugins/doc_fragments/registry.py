# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    # The registry option of the modules that publish to or sync from an OCI registry; its argument spec and validation
    # are in module_utils/registry_settings.py.
    DOCUMENTATION = r'''
options:
  registry:
    description:
      - An OCI registry (CNCF distribution, Harbor, ...) the environment images are distributed through, besides the
        tarballs on shared storage. Unset, no registry is used.
      - An environment's repository is C(<url>/<namespace>/<name>), with the tags C(<timestamp>) (the tarball's) and
        C(latest); images are pulled by digest, never by a tag.
      - The Docker daemon moves the images, so its own trust settings apply to the registry
        (C(/etc/docker/certs.d/<url>/ca.crt), C(insecure-registries)); a loopback registry (127.0.0.0/8) is reached over
        plain HTTP by every dockerd without configuration. The module reads only manifests from the registry itself,
        with O(registry.ca_path) and O(registry.insecure).
      - The inventory variable C(kohakuriver_registry) holds this dict for the roles and playbooks.
    type: dict
    suboptions:
      url:
        description:
          - The registry as C(host[:port]), without a scheme or path, for example V(registry.example.org:5000).
        type: str
        required: true
      namespace:
        description:
          - The repository path under O(registry.url), one or more lowercase components separated by C(/) (a Harbor
            project, for example).
        type: str
        default: kohakuriver
      username:
        description:
          - The user name, for Basic auth or a Bearer token service (Harbor, distribution's token auth). Give
            O(registry.password) with it.
        type: str
      password:
        description:
          - The password or token of O(registry.username). Never logged or returned.
        type: str
      ca_path:
        description:
          - A CA bundle (PEM) on the node the module runs on, for the module's own HTTPS requests to the registry.
            Unset, the system's CAs. The daemon trusts what its own configuration says.
        type: path
      insecure:
        description:
          - Allow plain HTTP, or HTTPS without certificate verification, for a registry that is not on loopback.
            Without it such a registry is refused, before anything is pushed or pulled.
          - The daemon needs the registry in its C(insecure-registries) too.
        type: bool
        default: false
'''
