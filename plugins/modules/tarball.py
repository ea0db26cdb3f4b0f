#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: tarball
short_description: Package an environment container into an image tarball on shared storage, or delete tarballs
version_added: 0.1.0
description:
  - With O(state=present), commits the environment container C(kohakuriver-env-<name>) on the Host to
    C(kohakuriver/<name>:base) and saves it as C(<tarball_dir>/<name>-<timestamp>.tar), a file plain
    C(docker load -i) loads on Docker 20.10 and on Docker 25 and later alike. This is KohakuRiver's
    C(kohakuriver docker tar create), done atomically.
  - The timestamp is the Docker host's current Unix time, but always greater than the newest tarball of the
    environment, so two packagings in one second never share a name. When it is ahead of the clock, the module
    waits for the clock before committing, so the image's C(Created) is never earlier than the tarball's number
    (KohakuRiver runners would otherwise reload it before every task).
  - The image behaves like the image the container was created from, for every client (C(docker run IMAGE CMD)
    runs CMD, C(docker run IMAGE) does what the base image does), because it gets that base image's C(Entrypoint),
    C(Cmd) and C(StopSignal), never the container's keep-alive loop. Everything else (C(Env), C(WorkingDir), C(User),
    C(Labels), ...) is the container's, which holds the base image's values plus what the environment definition
    set (O(kohakuriver.docker.container#module:env), O(kohakuriver.docker.container#module:labels)).
  - The image is labelled C(io.kohakuriver.docker.timestamp=<timestamp>), C(io.kohakuriver.docker.env=<name>) and
    C(io.kohakuriver.docker.managed=false). Docker's commit cannot remove the container's
    C(io.kohakuriver.docker.managed=true) label, so the image overrides it. A container made from the image by
    anyone but M(kohakuriver.docker.container) (C(docker run), KohakuRiver's runner) is not taken for an
    environment container, and M(kohakuriver.docker.container) treats one of an environment's name as foreign.
  - A container of the environment's name that this collection did not make (no C(io.kohakuriver.docker.managed=true)
    label, for example made by KohakuRiver itself) is refused and left untouched, in check mode too, unless
    O(adopt=true), as M(kohakuriver.docker.container) does.
  - The container is stopped for the commit (or paused, with O(pause=true)) and started again right after it,
    also when the commit fails. A container that was not running is committed as it is and left so.
  - With O(layout=chain) (the default) every tarball is the previous tarball's image plus one layer holding only
    what changed since it, so a runner that holds the previous version loads only that layer
    (M(kohakuriver.docker.image_sync) skips the layers it has). For that the container continues from its commit.
    Instead of starting the old container again, the module renames it aside (C(<container>.chained-<id>)), creates
    one of the same name from the committed image with the old one's whole config (environment, labels, hostname,
    user, working folder, binds, mounts, limits, devices, restart policy, networks), every volume attached again by
    name (anonymous ones too), and starts it when the old one ran. Only once it runs is the old one removed (its
    volumes stay). Its files are the commit's, so nothing is lost. A failure at any of these steps puts the old
    container back as it was. A run killed at any step leaves a marker C(.<name>.continue) in O(tarball_dir), and the
    next run finishes the continuation (when the old container is already gone) or rolls it back.
  - A continued container runs its commit, not the image it was declared with. The labels
    C(io.kohakuriver.docker.base_image) and C(io.kohakuriver.docker.base_image_id) keep that image's reference and
    ID, and M(kohakuriver.docker.container) compares its O(kohakuriver.docker.container#module:image) with them
    (no drift, so no surprise recreation). Its C(container.image) result shows the declared reference.
  - With O(pause=true) a running container is committed while it keeps running, so it cannot continue from the
    commit (what it writes meanwhile would be lost). Its next tarball then carries everything it changed since it
    last continued, in one layer over the same shared layers.
  - A chain grows one layer per version, and overlay2 mounts at most about 125. When the next commit would pass
    O(max_layers), the layers the environment added over its base image are squashed into one. The committed image
    is saved into a hidden temporary file beside the tarballs, its newest version of every path (deletions kept as
    whiteouts) is written as one layer, and the image of the base image's layers plus that one is loaded back.
    The base layers stay shared, so runners keep them. That one update moves the whole environment layer, and
    the following ones are deltas again. The container stays stopped while this runs. Only the daemon's API is
    used. The PyPI package docker-squash is not used, since it is a separate tool with its own dependencies, and it
    unpacks the whole image into temporary folders twice. C(docker export) piped into C(docker import) would put
    the base image into the same single layer, shared with nothing.
  - With O(layout=flat) the container is started again as it was, so every tarball is its base image plus one
    layer of everything the container changed since it was created (the shape of 0.1 and KohakuRiver's own).
    An environment that already continued keeps the layers it got.
  - Both layouts make complete images that plain C(docker load -i) and KohakuRiver's runners load.
  - A SIGTERM at any moment ends the run with the container in the state it had before. A stop under way is
    waited for and the container started again. After a SIGKILL, or when the start fails, a marker file
    C(.<name>.restart) in O(tarball_dir) makes the next run start it.
  - The image is streamed into a hidden temporary file in O(tarball_dir) through a few reusable 1 MiB buffers,
    never held in memory, hashed and indexed while it is written (on threads of their own), flushed to disk as it
    goes (what reached the disk leaves the page cache), and only then published under its final name. Before the tarball, a sidecar
    C(<name>-<timestamp>.tar.json) is published (its format is described in M(kohakuriver.docker.tarball_info))
    with the tarball's sha256, size, image ID, layer diff IDs, every member's offset, size and
    sha256, the source container and the engine version. Each byte is hashed once, for the whole file; a large
    layer member's sha256 is its diff ID (or, in an OCI layout, its blob name), which the daemon checks as it
    exports the layer.
  - B(Signed sidecars.) With O(signing_key), the sidecar's exact bytes are signed with that OpenSSH key
    (C(ssh-keygen -Y sign), namespace C(kohakuriver.docker-sidecar@v1)) and the signature
    C(<name>-<timestamp>.tar.json.sig) is published before the sidecar and the tarball, written the same way (a
    hidden temporary file, flushed, renamed). The sidecar holds the tarball's sha256 and every layer's digest, so
    runners that check the signature (M(kohakuriver.docker.image_sync) with
    O(kohakuriver.docker.image_sync#module:allowed_signers)) load only what this key signed. A newest tarball not
    signed by the key (made before signing was turned on, or with the previous key) is packaged again.
  - Only after publishing, tarballs of this environment beyond O(keep) are deleted with their sidecars, and
    the superseded C(kohakuriver/<name>) images this module committed on the Host that no container uses.
    Nothing of another environment is touched, and no host-wide prune is done.
  - Packagings of one environment are serialised by a lock file C(.<name>.package.lock) in O(tarball_dir).
    A run holding the lock first removes the hidden temporary files that killed runs of this environment left,
    and starts the container again if such a run had stopped it.
  - When the container has not changed since its newest tarball, nothing is made and the result is unchanged.
    Docker decides it. The container is committed (paused, never stopped) and the layer diff IDs and the
    user-visible config (C(Env), C(Cmd), C(Entrypoint), C(WorkingDir), C(User), C(Labels), ...) of that trial
    image are compared with the newest tarball's sidecar; the trial image is then removed.
    A tarball whose image still has the container's keep-alive loop and managed label (made before images kept
    their base image's runtime) differs in its config, so the first run after the upgrade makes a new one.
  - B(Publishing to a registry.) With O(registry), once the tarball is published (exactly as without it), the Host's
    daemon pushes its image as C(<url>/<namespace>/<name>:<timestamp>) and moves C(<url>/<namespace>/<name>:latest)
    to it. The module then reads the pushed manifest back from the registry (its digest checked) and requires its
    config to be the tarball's image ID, and only then records C(registry) (repository, tag, manifest digest) in the
    sidecar, which is written again (and signed again with O(signing_key)). The local C(<url>/<namespace>/<name>)
    tags and digests are removed from the Host afterwards, so it keeps no extra references to its images.
    The push is a phase of its own in O(progress) (the bytes the daemon reports sent, of the image's size).
  - A push that fails (unreachable registry, wrong credentials, the daemon's error) is a one-line error after the
    tarball was published. The tarball, its sidecar (without a registry digest) and the container stay as they are,
    and the next run pushes again. A registry that is not on loopback is refused over plain HTTP unless
    O(registry.insecure=true).
  - An up-to-date tarball whose sidecar records a digest of this repository that the registry still has is not
    pushed again. One whose sidecar records none, or a digest the registry lacks, is pushed (a change). Its image
    must still be on the Host (C(kohakuriver/<name>:base)); a signed one needs O(signing_key) to record the digest.
  - With O(state=absent), deletes the tarball named by O(tarball), or every tarball of the environment, each with
    its sidecar and signature. No Docker daemon is contacted, unless O(purge=true).
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.attributes
  - kohakuriver.docker.progress
  - kohakuriver.docker.registry
attributes:
  check_mode:
    support: partial
    details:
      - Check mode commits nothing. It predicts a new tarball when O(force=true), when there is no tarball of the
        environment or the newest has no sidecar, when the container is not the one the newest tarball was made
        from, when its config differs, or when the set of paths it added, changed or deleted differs.
      - With O(layout=flat) it cannot see a file whose contents changed when that path had already changed before
        the newest tarball; the real run, which compares a trial commit, does. With O(layout=chain) the container's
        changes are those since the newest tarball, so check mode sees that file too.
      - RV(runner_update) says how many layers the new image would have, which layers a runner that holds the newest
        tarball would be sent, and whether a squash would happen. The new layer does not exist yet, so its size
        is an estimate. It is the container's C(SizeRw), the size of its writable layer, which holds what it changed
        since the image it runs (its last commit with O(layout=chain)). A layer tar adds a header of 512 bytes
        per file to that.
  diff_mode:
    support: full
    details:
      - The environment's tarball file names before and after, and after them the RV(runner_update).
      - With O(registry), check mode reads the registry (never pushes) and RV(registry) says what would be pushed
        (its C(digest) null), or what the sidecar records when nothing would be.
  idempotent:
    support: full
    details:
      - A second run reports no change while the container's layers and config (as the commit would give them to
        the image) equal the newest tarball's and, with O(registry), the registry still has the digest its sidecar
        records.
options:
  name:
    description:
      - The environment name. Its container is C(kohakuriver-env-<name>), its image C(kohakuriver/<name>:base).
    type: str
    required: true
  state:
    description:
      - V(present) makes a new tarball when the container changed since the newest one (or O(force=true)).
      - V(absent) deletes the tarball O(tarball), or, without it, every tarball of the environment.
    type: str
    choices: [present, absent]
    default: present
  adopt:
    description:
      - Package a foreign container of this name (one without the managed label, for example made by
        KohakuRiver itself) as if this collection had made it. It is stopped for the commit and started again
        like any environment container.
    type: bool
    default: false
  tarball_dir:
    description:
      - The tarball folder on shared storage. Created (mode 0755) when missing; its parent must exist, so an
        unmounted share is an error rather than a local folder.
    type: path
    default: /mnt/cluster-share/kohakuriver-containers
  keep:
    description:
      - How many tarballs of this environment to keep, the new one included. Older ones are deleted with their
        sidecars once the new one is published, except the protected ones (O(protect)). V(1) is KohakuRiver's
        automatic cleanup.
    type: int
    default: 1
  protect:
    description:
      - Tarballs of this environment that O(keep) never deletes, each given by its file name
        (V(my-python-env-1700000000.tar)) or timestamp (V(1700000000)); the pinned versions (O(kohakuriver.docker.image_sync#module:pin)),
        which the environment role and the C(tar_create) playbook pass from the C(pin) of the inventory's definitions.
      - A protected tarball that no longer exists is ignored.
    type: list
    elements: str
  force:
    description:
      - Make a new tarball even when the container has not changed.
    type: bool
    default: false
  mode:
    description:
      - File mode of the tarball and its sidecar. Runners must be able to read it; world-writable modes
        are refused.
    type: raw
    default: '0644'
  pause:
    description:
      - Commit a running container paused (Docker's freezer) instead of stopped, so its processes survive.
        Files a process is writing at that moment may be caught half-written.
    type: bool
    default: false
  stop_timeout:
    description:
      - Seconds the container gets to stop before it is killed, when it is stopped for the commit.
    type: int
    default: 10
  image_timeout:
    description:
      - Seconds to wait for the daemon to commit the container, and for the first byte of the saved image.
        Both take time in proportion to the image, since Docker writes the whole image to a temporary folder
        before it sends anything (about 2 s for 350 MB on Docker 20.10), so a large image needs much longer
        than O(timeout). Once bytes flow, the save has no time limit.
    type: int
    default: 1800
  purge:
    description:
      - With O(state=absent) and no O(tarball), the environment is going away, so besides its tarballs this also
        removes its package lock file and, from the Docker host, the images packaging committed for it (labelled
        with the environment and a timestamp, with all their C(kohakuriver/<name>) tags, V(base) among them).
      - An image a container uses, or one that a tag outside C(kohakuriver/<name>) names, is kept and listed in
        RV(kept_images). Runners keep their images (there M(kohakuriver.docker.image_sync) with
        O(kohakuriver.docker.image_sync#module:prune=true) removes superseded ones).
    type: bool
    default: false
  signing_key:
    description:
      - Path on the Host of the OpenSSH private key (without passphrase, mode 0600, kept off the shared storage) that
        signs each new sidecar; the P(kohakuriver.docker.host#role) role makes one. Unset, sidecars are not signed.
      - OpenSSH signatures were chosen over a signature library because administrators know the keys and the
        allowed-signers file, C(ssh-keygen) 8.2 or later is on every node already, and runners need no new Python
        package. The private key is read by C(ssh-keygen) only, never by this module, and never appears in results.
      - A missing C(ssh-keygen), a key with a passphrase or one readable by others is an error before anything is
        committed.
    type: path
  layout:
    description:
      - V(chain) makes each tarball the previous one's image plus one layer of what changed since, and continues the
        container from its commit (see the description).
      - V(flat) makes each tarball the base image plus one layer of everything the container changed since it was
        created, and leaves the container as it is.
    type: str
    choices: [chain, flat]
    default: chain
    version_added: 0.2.0
  max_layers:
    description:
      - With O(layout=chain), the most layers an image may have. When the next commit would have more, the layers
        above the base image are squashed into one, so that one update is full-size.
      - From 2 to 120. overlay2 mounts at most about 125 layers.
    type: int
    default: 60
    version_added: 0.2.0
  tarball:
    description:
      - With O(state=absent), the file name of the one tarball to delete, for example
        V(my-python-env-1700000000.tar). Only a tarball name of environment O(name), directly in
        O(tarball_dir), is accepted; a path, V(..), a link pointing out of the folder or any other name is refused.
    type: str
seealso:
  - module: kohakuriver.docker.tarball_info
  - module: kohakuriver.docker.container
'''

EXAMPLES = r'''
- name: Package my-python-env (kohakuriver docker tar create my-python-env)
  kohakuriver.docker.tarball:
    name: my-python-env
  register: packaged

- name: Package a running container without stopping it, keeping the three newest tarballs
  kohakuriver.docker.tarball:
    name: my-cuda-env
    pause: true
    keep: 3
    tarball_dir: /nfs/kohakuriver-containers

- name: Package and sign the sidecar with the Host's key (runners check it with allowed_signers)
  kohakuriver.docker.tarball:
    name: my-python-env
    signing_key: /etc/kohakuriver-docker/signing_key

- name: Package and also push the image to a registry (the sidecar records its digest)
  kohakuriver.docker.tarball:
    name: my-python-env
    registry:
      url: registry.example.org:5000
      username: "{{ registry_user }}"
      password: "{{ registry_password }}"
      ca_path: /etc/ssl/certs/registry-ca.pem

- name: Delete one tarball (kohakuriver docker tar delete my-python-env-1700000000.tar)
  kohakuriver.docker.tarball:
    name: my-python-env
    state: absent
    tarball: my-python-env-1700000000.tar

- name: Delete every tarball of an environment
  kohakuriver.docker.tarball:
    name: my-python-env
    state: absent

- name: An environment goes away - its tarballs, package lock and the images packaging committed on the Host
  kohakuriver.docker.tarball:
    name: my-python-env
    state: absent
    purge: true
'''

RETURN = r'''
tarball:
  description:
    - The new tarball, or with no change the newest existing one. In check mode, the tarball that would be made
      (path, env and timestamp only). Null with O(state=absent), or when there is none.
  returned: always
  type: dict
  contains:
    path:
      description: Absolute path of the tarball.
      type: str
      sample: /mnt/cluster-share/kohakuriver-containers/my-python-env-1700000000.tar
    file:
      description: Its file name.
      type: str
      sample: my-python-env-1700000000.tar
    env:
      description: Environment name.
      type: str
    timestamp:
      description: The Unix time in its name.
      type: int
      sample: 1700000000
    date:
      description: That time, ISO-8601 UTC.
      type: str
      sample: '2023-11-14T22:13:20Z'
    size:
      description: Size in bytes (null for a tarball without sidecar).
      type: int
    sha256:
      description: Hex sha256 of the whole file (null for a tarball without sidecar).
      type: str
    image_id:
      description: ID of the image in it (null for a tarball without sidecar).
      type: str
      sample: sha256:0f3a...
    signed_by:
      description:
        - The key whose signature the sidecar has (C(key), as C(ssh-keygen -l) names it; C(principal) is null on the
          Host, which does not read allowed-signers), or null when the tarball has no signature.
      type: dict
      sample: {principal: null, key: 'ED25519 SHA256:r5RcjAgf1S+11XyTl3IkRiXNTd9qTzTx8XP7UNP+tt0'}
removed:
  description: Paths of the tarballs deleted (retention beyond O(keep), or O(state=absent)); their sidecars went too.
  returned: always
  type: list
  elements: str
cleaned:
  description: Leftovers of interrupted runs that were removed (temporary files, sidecars without tarball).
  returned: always
  type: list
  elements: str
removed_images:
  description:
    - IDs of superseded images of this environment, committed by this module, removed from the Host.
    - With O(purge=true), every image packaging committed for the environment that was removed (in check mode, that
      would be).
  returned: always
  type: list
  elements: str
kept_images:
  description: With O(purge=true), the committed images kept, each as the image ID, a colon and why it was kept.
  returned: always
  type: list
  elements: str
reasons:
  description: Why a tarball was (or in check mode would be) made.
  returned: always
  type: list
  elements: str
  sample: [files were added or deleted in the container since my-python-env-1700000000.tar]
save:
  description: How the image was saved; null when no tarball was made.
  returned: always
  type: dict
  contains:
    seconds:
      description: Wall time of streaming the image to disk, flush included.
      type: float
    bytes:
      description: Bytes written.
      type: int
    mb_per_s:
      description: Throughput in MB (10^6 bytes) per second.
      type: float
    staging_seconds:
      description:
        - Of RV(save.seconds), the time until the daemon's first byte. Docker prepares the whole image in a
          temporary folder before it sends anything, as it does for C(docker save).
      type: float
    flush_seconds:
      description: Of RV(save.seconds), the time the final fsync of the tarball took.
      type: float
runner_update:
  description:
    - What the new tarball (in check mode, the one that would be made) sends to a runner that holds the newest
      tarball before it. Null when no tarball is made, and with O(state=absent).
  returned: always
  type: dict
  contains:
    layout:
      description: The O(layout).
      type: str
    layers:
      description: How many layers its image has.
      type: int
    layers_sent:
      description: How many of them that runner does not have.
      type: int
    sent_layers:
      description: Their diff IDs. In check mode the new layer is named C((the new layer)).
      type: list
      elements: str
    bytes_sent:
      description: The size of those layers in the tarball. Not returned in check mode.
      type: int
    new_layer_bytes:
      description: In check mode, the estimated size of the new layer (the container's C(SizeRw)).
      type: int
    squash:
      description: Whether the layers above the base image are (or would be) squashed into one (O(max_layers)).
      type: bool
    estimate:
      description: In check mode, how the new layer's size was estimated.
      type: str
registry:
  description:
    - With O(registry), what the sidecar of RV(tarball) records as pushed (in check mode, what would be pushed, with
      C(digest) null). Null without O(registry).
  returned: always
  type: dict
  contains:
    repository:
      description: The repository, C(<url>/<namespace>/<name>).
      type: str
      sample: registry.example.org:5000/kohakuriver/my-python-env
    tag:
      description: The tarball's timestamp, the tag pushed (C(latest) moved with it).
      type: str
      sample: '1700000000'
    digest:
      description: The manifest digest the daemon reported (on the containerd image store, possibly an index's); pull by it.
      type: str
      sample: sha256:5b0e...
waited_for_lock:
  description: Seconds spent waiting for another packaging of the same environment.
  returned: when O(state=present) and not in check mode
  type: float
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_STOP_TIMEOUT, DEFAULT_TARBALL_DIR
from ansible_collections.kohakuriver.docker.plugins.module_utils.packaging import Packaging
from ansible_collections.kohakuriver.docker.plugins.module_utils.packaging_request import DEFAULT_MAX_LAYERS, PackagingRequest
from ansible_collections.kohakuriver.docker.plugins.module_utils.progress import PROGRESS_ARGUMENT_SPEC
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import REGISTRY_ARGUMENT_SPEC
from ansible_collections.kohakuriver.docker.plugins.module_utils.tarball_removal import RemovalRequest, remove_tarballs

ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    tarball_dir=dict(type='path', default=DEFAULT_TARBALL_DIR),
    keep=dict(type='int', default=1),
    protect=dict(type='list', elements='str'),
    force=dict(type='bool', default=False),
    mode=dict(type='raw', default='0644'),
    pause=dict(type='bool', default=False),
    stop_timeout=dict(type='int', default=DEFAULT_STOP_TIMEOUT),
    image_timeout=dict(type='int', default=1800),
    adopt=dict(type='bool', default=False),
    purge=dict(type='bool', default=False),
    tarball=dict(type='str'),
    signing_key=dict(type='path', no_log=False),
    layout=dict(type='str', choices=['chain', 'flat'], default='chain'),
    max_layers=dict(type='int', default=DEFAULT_MAX_LAYERS),
    **dict(PROGRESS_ARGUMENT_SPEC, **REGISTRY_ARGUMENT_SPEC)
)


def operation(module):
    if module.params['state'] == 'absent':
        request = RemovalRequest(module.params)
        client = client_for(module) if request.purge else None
        return remove_tarballs(request, module.check_mode, client)
    request = PackagingRequest(module.params)
    return Packaging(client_for(module), request, module.check_mode).run()


def main():
    run(new_module(ARGUMENT_SPEC, supports_check_mode=True), operation)


if __name__ == '__main__':
    main()
