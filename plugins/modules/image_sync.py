#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: image_sync
short_description: Load the newest tarball of an environment into a runner's Docker daemon
version_added: 0.1.0
description:
  - Makes C(kohakuriver/<name>:base) on a runner the image of the newest tarball C(<tarball_dir>/<name>-<timestamp>.tar)
    (the largest timestamp in the file name), the way KohakuRiver's runner syncs before a task, but checked by identity.
  - The image is B(up to date) when the local C(:base) image carries the newest tarball's timestamp (its label
    C(io.kohakuriver.docker.timestamp), or a local tag C(kohakuriver/<name>:<timestamp>) on the same image) and, when the
    tarball has a sidecar, has the sidecar's image ID. Deciding this lists the folder, reads the small sidecar,
    and inspects one image. File modification times play no part. For a local
    C(unix://) daemon without TLS (and without O(debug)), that inspect and every change (tag, load, prune) are HTTP
    requests over the socket made with the Python standard library, so such a runner does not even need the Docker
    SDK; other daemons are reached through the SDK.
  - B(Nothing on the share is trusted without a check.) Every field of a sidecar is type-checked; one that is not
    well-formed, or lacks C(size), C(sha256), C(image_id), C(layers) or C(members), is an error naming the field.
    Before calling a runner up to date or re-tagging an image already on the daemon, the tarball is checked to hold
    the image the sidecar names. The file has the sidecar's size, its files sit where the sidecar lists them, its
    C(manifest.json) and image config have the sidecar's sha256s, the config's sha256 is the sidecar's image ID and
    its layers are the sidecar's. This reads the tar headers (seeking over the data) and those two small files, not
    the layers. An image ID is the sha256 of the config, which lists the layers' diff IDs, so a daemon image with
    that ID is the tarball's image. A sidecar that disagrees with its tarball is refused with an error naming both
    files, and the runner keeps what it had.
  - B(Signatures.) With O(allowed_signers), the sidecar's bytes are read once and its signature
    C(<tarball>.json.sig) (made on the Host by M(kohakuriver.docker.tarball) with
    O(kohakuriver.docker.tarball#module:signing_key)) is checked over those bytes before any field of the sidecar
    is used. C(ssh-keygen -Y find-principals) names the signer from O(allowed_signers), C(ssh-keygen -Y verify)
    checks the signature (namespace C(kohakuriver.docker-sidecar@v1)) and O(revoked_keys). Then the tarball is
    checked against the signed sidecar as below, so a signature covers the tarball's sha256 and every layer. That costs a
    small read and two short C(ssh-keygen) runs, never a re-hash of the tarball. A signature by a key
    O(allowed_signers) does not list or O(revoked_keys) revokes, a corrupt one, one over another sidecar, a
    sidecar edited after signing, or a signed sidecar describing another file is refused with an error naming
    the file and the key, and the runner keeps what it had.
  - A tarball that is a link leading out of O(tarball_dir) is refused, as M(kohakuriver.docker.tarball) with
    O(kohakuriver.docker.tarball#module:state=absent) refuses to delete one.
  - When the image is B(missing or outdated), the tarball is streamed into the daemon (never into memory) without its
    own tags, checking on the way the whole file's sha256 against the sidecar (hashed on a thread of its own; the
    daemon gets the last byte only once it matches; when it does not, the member that changed is named). Only when
    the daemon reports the expected image ID are C(kohakuriver/<name>:<timestamp>) and then C(kohakuriver/<name>:base)
    tagged, so the previous C(:base) keeps running tasks until then. A tarball that fails a check or the load leaves
    the runner as it was (an image the failed load left behind is removed when it is new, untagged and unused), and
    the error names the file and the cause. When the daemon or the connection fails during a load, the error names
    the load, the tarball and the bytes sent; an error of the clean-up after it never replaces it.
  - B(Thin load.) When the daemon already holds the bottom layers of the image (the usual update, with the same base
    and a new environment layer, or the image the environment was created from), only the layers it lacks are sent,
    in an archive of those layers, the image config and C(manifest.json), each read from its place in the tarball and
    checked against its sha256 as it is read (the sidecar's, or for an OCI layout blob its name). The layers not sent
    are the daemon's own, found by chain ID (the hash of a layer and every layer beneath it), so the image is the
    same, with the same image ID, as after loading the whole tarball. The whole file's sha256 is checked only when
    the whole file is read. An engine that refuses the thin archive gets the whole tarball, with a warning.
  - When the tarball's image is already on the daemon (by the sidecar's image ID, or the C(:<timestamp>) tag) it is
    only tagged, after the check above (without reading the layers).
  - A tarball without a sidecar (made by KohakuRiver itself) is loaded too, and reported as unverified; it is up to date
    by its timestamp alone, as KohakuRiver decides, and loaded with only the checks the archive itself allows (tar
    structure, OCI blob names).
  - One lock per environment (a file in O(state_dir)), so concurrent syncs of one environment load it once and all
    succeed, and syncing one environment never waits for another.
  - From the share, never pulls from a registry. No tarball and no local image is an error.
  - B(From a registry.) With O(registry) (and O(source) V(auto) or V(registry)), the image comes from the registry
    instead. The wanted version is a manifest digest. When O(tarball_dir) is a folder holding tarballs of the
    environment, it is the digest the newest sidecar that records a registry push names (the pinned tarball's sidecar,
    with O(pin)); the sidecar's signature is checked first with O(allowed_signers). Otherwise it is the digest the
    registry's C(latest) tag names now (the C(<timestamp>) tag, with O(pin)).
  - The runner is up to date when the C(RepoDigests) of C(kohakuriver/<name>:base) hold C(<repository>@<digest>)
    (under any registry address, so a rack's pull-through cache counts) and, with a sidecar, its image ID is the
    sidecar's. That takes one image inspect, plus one small registry request when a tag must be resolved. With the
    digest from the share, an up-to-date runner makes no registry request at all.
  - Otherwise the manifest is read by digest (its sha256 checked, at most 4 MiB) and its config digest checked
    against the sidecar's image ID. A mismatch is an error and nothing is pulled. Then the daemon pulls
    C(<repository>@<digest>), never a moving tag. It fetches only the layers it lacks and checks each against its
    digest. Only when the pulled image's ID is the manifest's (its config digest on the classic image store, the
    digest pulled on the containerd store) are C(kohakuriver/<name>:<timestamp>) and C(:base) tagged. The timestamp
    comes from the sidecar, the pin or the image's C(io.kohakuriver.docker.timestamp) label. A version the daemon
    still holds (pulled by that digest, or tagged with its timestamp) is only re-tagged (RV(action=tag)).
  - The registry being unreachable or refusing (credentials, TLS), a digest it does not have, or a failed pull is an
    error on one line, and the runner keeps what it had. With O(fallback_to_share) the tarball folder is synced
    instead, with a warning. With O(allow_stale) the local image is kept, with a warning.
  - B(Pin and roll back.) With O(pin), C(:base) becomes that kept tarball's image instead of the newest one. A runner
    that still holds the pinned version (its C(kohakuriver/<name>:<timestamp>) tag, or the sidecar's image ID) is only
    re-tagged, moving no bytes (RV(action=tag), RV(bytes_sent=0)); otherwise the tarball is loaded (thin when the
    daemon holds its bottom layers). O(prune) never removes the pinned version.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.attributes
  - kohakuriver.docker.registry
  - kohakuriver.docker.progress
attributes:
  check_mode:
    support: full
    details:
      - Reports whether a load (or a re-tag) would happen, and for a load which layers it would send and how many bytes
        (RV(layers_to_send), RV(bytes_to_send); the daemon is asked which layers it holds, the tarball's headers are
        read); loads, tags and prunes nothing, and takes no lock.
      - From a registry, reports whether a pull (or a re-tag) would happen, and which layers of the manifest the runner
        seems to lack (RV(layers_to_pull), RV(bytes_to_pull)). That is an approximation, a layer counts as held when a
        manifest of a version of this repository that the runner holds lists it; layers shared only with other images
        count as missing. The registry is asked for manifests only; nothing is pulled.
  diff_mode:
    support: full
    details:
      - The diff shows the image ID and timestamp of C(:base) before and after, with the layers and bytes a load sends
        (from a registry, the digest and the layers and bytes a pull fetches).
  idempotent:
    support: full
options:
  name:
    description:
      - The environment; its image is C(kohakuriver/<name>:base).
      - Give O(name), or O(names) and O(all_tarballs) to sync several environments in one run.
    type: str
    aliases: [env]
  names:
    description:
      - Several environments, synced one after another in one run (one module process, one daemon connection).
        The result lists each in RV(results), and the top-level return values of a single environment are not
        returned. An environment that fails does not stop the others; the run then fails, its message naming each
        environment that failed and why.
    type: list
    elements: str
  all_tarballs:
    description:
      - Also sync every environment that has a tarball in O(tarball_dir), as this runner sees the folder, after those
        in O(names), by name. One folder listing; the sidecars are read per environment as for O(name).
      - A missing O(tarball_dir) is an error, unless the image comes from a registry (see O(source)); then only O(names)
        are synced.
    type: bool
    default: false
  pins:
    description:
      - With O(names) or O(all_tarballs), the O(pin) of each pinned environment, as a dictionary from environment name
        to the tarball file name or timestamp. A pin of an environment that is not synced in this run is an error.
    type: dict
  tarball_dir:
    description:
      - The tarball folder on shared storage, as the runner sees it; an absolute path.
    type: path
    default: /mnt/cluster-share/kohakuriver-containers
  state_dir:
    description:
      - A runner-local folder for the per-environment lock files (created when missing, mode 0755).
    type: path
    default: /var/lib/kohakuriver-docker
  prune:
    description:
      - After a successful load or re-tag, remove superseded C(kohakuriver/<name>) images (their C(kohakuriver/<name>)
        tags, and the previous C(:base) when that left it untagged). An image that any container uses, running or
        stopped, is kept; so is an image that other repositories' tags still name.
    type: bool
    default: false
  allow_stale:
    description:
      - When the tarball folder cannot be read, accept the local C(kohakuriver/<name>:base) with a warning instead of
        failing. Without a local image it still fails.
    type: bool
    default: false
  allowed_signers:
    description:
      - Path on the runner of an OpenSSH allowed-signers file (C(ssh-keygen(1)) ALLOWED SIGNERS) listing the Host's
        public key, for example C(kohakuriver-host namespaces="kohakuriver.docker-sidecar@v1" ssh-ed25519 AAAA...).
        The P(kohakuriver.docker.runner#role) role installs it. Set, a tarball's signature is checked before its
        sidecar is used (see the description); unset, signatures are not checked.
      - B(Rotation.) List the old and the new key (two lines) while the Host signs with the new one and the old
        tarballs are replaced; then remove the old line.
    type: path
  require_signature:
    description:
      - Refuse a tarball whose sidecar has no signature, and a tarball without sidecar (made by KohakuRiver).
        Needs O(allowed_signers).
      - V(false) (the default) keeps clusters that do not sign working, and accepts an unsigned tarball with a
        warning. Whoever can write the shared folder can then remove the signature and replace tarball and
        sidecar with a consistent pair of their own, so turn it on once the Host signs.
    type: bool
    default: false
  revoked_keys:
    description:
      - Path on the runner of revoked keys, an OpenSSH KRL (C(ssh-keygen -k)) or a file of public key lines; a
        signature by one of them is refused even when O(allowed_signers) still lists the key. Needs O(allowed_signers).
    type: path
  lock_timeout:
    description:
      - Seconds to wait for another sync of the same environment on this runner before failing.
    type: int
    default: 3600
  pin:
    description:
      - Run this kept tarball instead of the newest, given by its file name (V(my-python-env-1700000000.tar), no folder) or its
        timestamp (V(1700000000)). A pin that is not a tarball of this environment in O(tarball_dir) is an error that
        lists the kept ones. Unset, the newest tarball runs.
      - KohakuRiver's own runners always load the newest tarball; see the README on pins in a mixed cluster.
    type: str
  source:
    description:
      - Where the image comes from. V(share) is the tarball folder O(tarball_dir), as without O(registry). V(registry)
        is the registry O(registry) (required then). V(auto) takes the registry when O(registry) is set, else the share.
    type: str
    choices: [auto, registry, share]
    default: auto
  fallback_to_share:
    description:
      - When syncing from the registry fails before anything changed (the registry unreachable or refusing, the digest
        missing, the pull failing), sync from the tarball folder O(tarball_dir) instead, with a warning. A manifest
        whose config is not the sidecar's image is never a reason to fall back; it stays an error.
      - Without O(registry), or with O(source=share), the share is the source already and this has no effect.
    type: bool
    default: false
notes:
  - The connection O(timeout) bounds the silence between two messages of the daemon, not the whole load.
seealso:
  - module: kohakuriver.docker.tarball
  - module: kohakuriver.docker.task
'''

EXAMPLES = r'''
- name: Make sure the runner has the newest my-python-env
  kohakuriver.docker.image_sync:
    name: my-python-env

- name: Sync from another shared folder, dropping superseded versions
  kohakuriver.docker.image_sync:
    name: my-python-env
    tarball_dir: /srv/share/kohakuriver-containers
    prune: true

- name: Load only what the Host signed
  kohakuriver.docker.image_sync:
    name: my-python-env
    allowed_signers: /etc/kohakuriver-docker/allowed_signers
    require_signature: true

- name: Roll the runner back to a kept version (a re-tag when the runner still holds it)
  kohakuriver.docker.image_sync:
    name: my-python-env
    pin: my-python-env-1700000000.tar

- name: Pull the environment from the registry (the digest the newest pushed sidecar names), or else from the share
  kohakuriver.docker.image_sync:
    name: my-python-env
    registry:
      url: registry.example.org:5000
      username: runner
      password: "{{ vault_registry_password }}"
      ca_path: /etc/kohakuriver-docker/registry-ca.pem
    fallback_to_share: true

- name: Sync every environment with a tarball on the share in one run, one of them pinned
  kohakuriver.docker.image_sync:
    all_tarballs: true
    pins:
      my-cuda-env: my-cuda-env-1700000100.tar
  register: synced
- name: Sync two named environments
  kohakuriver.docker.image_sync:
    names: [my-python-env, my-cuda-env]
- name: Keep running on the local image when the shared storage is down
  kohakuriver.docker.image_sync:
    name: my-python-env
    allow_stale: true
'''

RETURN = r'''
results:
  description:
    - With O(names) or O(all_tarballs), one result per environment, in the order synced. Each holds the return values
      below of that environment, as a run with O(name) returns them, and C(changed); an environment that failed holds
      only C(env), C(failed=true) and C(msg) (and the return values the failure gave).
    - The values below are returned at the top level only with O(name).
  returned: with O(names) or O(all_tarballs)
  type: list
  elements: dict
  sample: [{env: my-python-env, action: none, tarball: /mnt/cluster-share/kohakuriver-containers/my-python-env-1700000000.tar,
            changed: false}]
env:
  description: The environment.
  returned: always
  type: str
  sample: my-python-env
image:
  description: The local image reference.
  returned: always
  type: str
  sample: kohakuriver/my-python-env:base
action:
  description:
    - V(none) when up to date, V(tag) when the image was already on the daemon and only tagged, V(load) when the
      tarball was (or in check mode would be) loaded, V(pull) when the image was (or would be) pulled from the registry.
  returned: always
  type: str
  sample: load
tarball:
  description:
    - The newest tarball of the environment (the pinned one with O(pin)), or V(null) when there is none or the folder is
      unreachable. From a registry, the tarball whose sidecar named the digest, V(null) when a tag did.
  returned: always
  type: str
  sample: /mnt/cluster-share/kohakuriver-containers/my-python-env-1700000000.tar
timestamp:
  description: The timestamp (Unix seconds) of that tarball.
  returned: always
  type: int
  sample: 1700000000
image_id:
  description:
    - "The image ID of C(kohakuriver/<name>:base) afterwards, as this daemon names it (C(docker image inspect)): the digest
      of the image config on the classic image store, of the image's manifest on the containerd image store."
    - In check mode, for a load, the sidecar's image ID (the config digest) when there is a sidecar.
  returned: always
  type: str
  sample: sha256:2a2409f583c41090bd100fb443935488435ff96544c94767b1c057f74cd76d0c
previous_image_id:
  description: The image ID of C(kohakuriver/<name>:base) before, V(null) when there was none.
  returned: always
  type: str
verified:
  description:
    - True when the image of C(:base) is the tarball's, checked against a well-formed sidecar. Up to date or re-tagged
      (V(none), V(tag)), the tarball's size, member layout, C(manifest.json) and config match the sidecar, and the
      image ID on the daemon is that config's digest (the layers were not read; the daemon checked them against
      their diff IDs when it loaded them). After a load, every byte sent was checked as it was sent against the
      sidecar's sha256s (of the whole file for a whole load, of each member sent for a thin one; the layers left
      out are the daemon's own, found by their chain IDs from the checked config) and the daemon reported that
      image ID.
    - False for tarballs without a sidecar (KohakuRiver's), which are trusted by timestamp alone, and when the folder
      was unreachable (O(allow_stale)).
    - From a registry, true when C(:base) is the image pulled by the C(digest) of RV(registry) (the daemon checks every layer
      against its digest) and its ID is the manifest's, whose config was checked against the sidecar's image ID when
      the share named the version; false when the registry was unreachable and the local image was kept.
  returned: always
  type: bool
signed_by:
  description:
    - The signature that was checked over the sidecar (see O(allowed_signers)) - C(principal) (its name in
      O(allowed_signers)), C(key) (as C(ssh-keygen -l) names it) and C(signature) (the file) - or V(null) when no
      signature was checked (no O(allowed_signers), an unsigned tarball accepted without O(require_signature), or
      the folder unreachable). With RV(verified), the image is the tarball that key signed.
  returned: always
  type: dict
  sample: {principal: kohakuriver-host, key: 'ED25519 SHA256:r5RcjAgf1S+11XyTl3IkRiXNTd9qTzTx8XP7UNP+tt0',
           signature: /mnt/cluster-share/kohakuriver-containers/my-python-env-1700000000.tar.json.sig}
loaded:
  description: Whether the tarball was read and loaded in this run.
  returned: always
  type: bool
bytes_read:
  description: Bytes of the tarball read to load it (for a thin load, the layers sent; V(0) when nothing was loaded).
  returned: always
  type: int
bytes_sent:
  description: Bytes sent to the daemon's image load endpoint (V(0) when nothing was loaded).
  returned: always
  type: int
thin:
  description: Whether the load sent only the layers the daemon lacked (see the description).
  returned: always
  type: bool
layers_sent:
  description: Layers of the image sent to the daemon (V(0) when nothing was loaded).
  returned: always
  type: int
layers_skipped:
  description: Layers of the image left out of the load because the daemon already held them.
  returned: always
  type: int
pin:
  description: The pin asked for (O(pin)), V(null) for the newest tarball.
  returned: always
  type: str
layers_to_send:
  description:
    - The diff IDs of the layers a load sends (the layers the daemon lacks; all of them for a whole load). In check
      mode, what a load would send; V([]) when nothing is (or would be) loaded.
  returned: always
  type: list
  elements: str
bytes_to_send:
  description:
    - The bytes of the archive a load sends (thin or whole); in check mode, what it would send; V(0) when nothing is
      (or would be) loaded.
  returned: always
  type: int
seconds:
  description: Wall time of the whole sync, lock wait included.
  returned: always
  type: float
load_seconds:
  description: Wall time of streaming the tarball and the daemon's load.
  returned: when loaded
  type: float
load_mb_per_s:
  description: RV(bytes_sent) in MB (10^6 bytes) per second of RV(load_seconds).
  returned: when loaded
  type: float
lock_wait:
  description: Seconds spent waiting for another sync of this environment.
  returned: always
  type: float
pruned:
  description: Superseded images removed, each with its C(id) and the C(tags) removed.
  returned: always
  type: list
  elements: dict
stale:
  description: True when the folder (or the registry) was unreachable and the local image was accepted (O(allow_stale)).
  returned: always
  type: bool
source:
  description: Where the image came from, V(share) or V(registry) (V(share) too after O(fallback_to_share) fell back).
  returned: always
  type: str
  sample: registry
registry:
  description:
    - The registry version synced, C(repository) (C(<url>/<namespace>/<name>)), C(digest) (the manifest digest pulled or
      held) and C(tag) (the tag resolved to it, V(null) when the share's sidecar named the digest).
  returned: when RV(source=registry)
  type: dict
  sample: {repository: registry.example.org:5000/kohakuriver/my-python-env, tag: null,
           digest: 'sha256:84d1b181e957b1ce863c0a70baf65d4aace2c221282106af9fd5722f04ba781a'}
pulled:
  description: Whether the daemon pulled from the registry in this run.
  returned: when RV(source=registry)
  type: bool
layers_to_pull:
  description:
    - The manifest's layer digests (compressed) a pull fetches; in check mode, those the runner seems to lack
      (see check mode). V([]) when nothing is (or would be) pulled.
  returned: when RV(source=registry)
  type: list
  elements: str
bytes_to_pull:
  description: The compressed sizes of RV(layers_to_pull), summed.
  returned: when RV(source=registry)
  type: int
layers_pulled:
  description: Layers the daemon downloaded in this run (its pull messages); V(0) when nothing was pulled.
  returned: when RV(source=registry)
  type: int
layers_held:
  description: Layers of the image the daemon already had when it pulled (C(Already exists)).
  returned: when RV(source=registry)
  type: int
bytes_pulled:
  description: The compressed sizes of the layers downloaded, summed.
  returned: when pulled
  type: int
pull_seconds:
  description: Wall time of the daemon's pull.
  returned: when pulled
  type: float
pull_attempts:
  description:
    - Pulls it took. A pull that fails on the registry's side (HTTP 500, 502, 503 or 504, as a pull-through cache
      answers concurrent misses of one blob) is tried again, up to 3 times in all, 1 s and then 2 s apart, with a
      warning; the layers an attempt finished are not fetched again. Any other failure ends the sync at once.
  returned: when pulled
  type: int
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.module import daemon_for, docker_error, new_module, run
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_STATE_DIR, DEFAULT_TARBALL_DIR
from ansible_collections.kohakuriver.docker.plugins.module_utils.progress import PROGRESS_ARGUMENT_SPEC
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import REGISTRY_ARGUMENT_SPEC
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_sync import SOURCES, SourcedSyncRequest, SyncSource, sync_request
from ansible_collections.kohakuriver.docker.plugins.module_utils.sync_many import asks_for_many, checked_pins, environments, sync_each

ARGUMENT_SPEC = dict(
    name=dict(type='str', aliases=['env']),
    names=dict(type='list', elements='str'),
    all_tarballs=dict(type='bool', default=False),
    pins=dict(type='dict'),
    tarball_dir=dict(type='path', default=DEFAULT_TARBALL_DIR),
    state_dir=dict(type='path', default=DEFAULT_STATE_DIR),
    prune=dict(type='bool', default=False),
    allow_stale=dict(type='bool', default=False),
    lock_timeout=dict(type='int', default=3600),
    allowed_signers=dict(type='path'),
    require_signature=dict(type='bool', default=False),
    revoked_keys=dict(type='path', no_log=False),
    pin=dict(type='str'),
    source=dict(type='str', choices=list(SOURCES), default='auto'),
    fallback_to_share=dict(type='bool', default=False),
    **dict(PROGRESS_ARGUMENT_SPEC, **REGISTRY_ARGUMENT_SPEC)
)


def operation(module):
    params, daemon = module.params, daemon_for(module)
    if not asks_for_many(params):
        return sync_request(daemon, SourcedSyncRequest(params), module.check_mode)
    envs = environments(params['names'], params['all_tarballs'], params['tarball_dir'],
                        folder_may_be_missing=SyncSource(params).uses_registry)

    def sync_one(env, pin):
        one = dict(params, name=env, pin=None if pin is None else str(pin))
        return sync_request(daemon, SourcedSyncRequest(one), module.check_mode)

    return sync_each(envs, checked_pins(params['pins'], envs), sync_one, explain_error=docker_error)


def main():
    run(new_module(ARGUMENT_SPEC, supports_check_mode=True, sdk_on_demand=True,
                   mutually_exclusive=[(one, many) for one in ('name', 'pin') for many in ('names', 'pins')]),
        operation)


if __name__ == '__main__':
    main()
