#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: vps
short_description: Run a VPS session (an SSH-reachable container of an environment) on a runner
version_added: 0.1.0
description:
  - The counterpart of KohakuRiver's VPS tasks, run on the runner node. A session is a long-running container
    C(kohakuriver-vps-<name>) of C(kohakuriver/<env>:base) whose main process is C(sshd), published on a port of the
    runner. Root logs in with a key only; passwords and keyboard-interactive logins are off.
  - Creating a session syncs the environment first, with the same code and lock as M(kohakuriver.docker.image_sync)
    (unless O(sync=false)). The container gets the shared data folder C(<shared_dir>/shared_data) at C(/shared) and the
    limits, GPUs and mounts given, as M(kohakuriver.docker.task) containers do, and the restart policy
    C(unless-stopped), so it comes back after a restart of the runner's Docker daemon.
  - "sshd runs as C(/usr/sbin/sshd -D -e) with its login rules on its command line (C(PermitRootLogin=prohibit-password),
    C(PasswordAuthentication=no), C(KbdInteractiveAuthentication=no), C(AuthorizedKeysFile=.ssh/authorized_keys)), so no
    file of the image is edited. An image without C(/usr/sbin/sshd) fails with a message saying how to prepare it (the
    C(kohakuriver.docker.environment) role's C(vps: true))."
  - Every public key of O(authorized_keys) is validated before anything else runs (one line each, the key type inside
    the base64 data must be the declared one; private keys, line breaks and quotes outside option values are refused).
    The keys are written to C(/root/.ssh/authorized_keys) (mode 0600, folder 0700, owned by root) as an archive through
    the Docker API, never through a shell. A later run with other keys rewrites the file, after comparing its content.
  - With O(generate_key=true) and no keys in the session yet, an ed25519 key pair is made and the private key returned
    once in RV(private_key). Register the result of such a task with C(no_log) (see the examples).
  - Each session gets its own ed25519 host key when it is created (not one shared by every container of the image),
    returned as RV(host_key) and a ready RV(known_hosts) line. Setup happens only at creation and when the keys
    change; a restart by Docker runs nothing and changes no file.
  - Port 22 of the session is published on O(port) of the runner, or on a free port picked once at creation (Docker's
    own choice would change at every start), bound to O(bind_address).
  - An existing session is never recreated; options that differ from the request are reported in RV(drift) and as a
    warning. O(state=stopped) keeps the container and its files, O(state=absent) removes it. O(snapshot=true) commits
    the session to C(kohakuriver/<env>:vps-<name>-<unix seconds>) before it is stopped or removed.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.run_options
  - kohakuriver.docker.attributes
  - kohakuriver.docker.registry
attributes:
  check_mode:
    support: full
    details:
      - Reports what would be created, started, stopped, snapshotted, removed or rewritten; the environment sync is
        checked only (see M(kohakuriver.docker.image_sync)). No key is generated.
  diff_mode:
    support: full
    details:
      - State, endpoint, limits and the fingerprints of the authorized keys, before and after.
  idempotent:
    support: full
    details:
      - A second run with the same arguments changes nothing (a new tarball of the environment is synced only when a
        session is created).
options:
  name:
    description:
      - The session name (1 to 63 letters, digits, C(.), C(_), C(-)); the container is C(kohakuriver-vps-<name>).
    type: str
    required: true
    aliases: [session]
  env:
    description:
      - The environment; the session runs C(kohakuriver/<env>:base). Required with O(state=started).
      - With O(state=stopped) or O(state=absent), a session of another environment is left alone and the task fails.
    type: str
  state:
    description:
      - V(started) creates the session when missing and starts it when stopped.
      - V(stopped) stops it and keeps the container with the user's files.
      - V(absent) removes it (its files are lost unless O(snapshot=true)).
    type: str
    choices: [started, stopped, absent]
    default: started
  authorized_keys:
    description:
      - The public keys that may log in as root, one per element, as in a C(.pub) file or an C(authorized_keys) line
        (options such as C(from="10.0.0.0/8") and a comment allowed).
      - Accepted types are C(ssh-ed25519), C(ssh-rsa) (2048 bits or more), C(ecdsa-sha2-nistp256/384/521) and the
        C(sk-) security key types.
      - The file then holds exactly these keys; keys added inside the session by hand are replaced when the list
        differs. Without O(authorized_keys) and O(generate_key), an existing session keeps its keys.
      - Mutually exclusive with O(generate_key).
    type: list
    elements: str
  generate_key:
    description:
      - When the session is created (or has no keys), make an ed25519 key pair, authorize its public key, and return
        the private key once in RV(private_key). Later runs keep the key and return no private key.
    type: bool
    default: false
  port:
    description:
      - The runner's port for the session's SSH. Without it, a free port is picked once when the session is created
        and kept for the session's life.
    type: int
  bind_address:
    description:
      - The runner address the port is bound to when the session is created. V(0.0.0.0) (the default) listens on
        every address of the runner; giving the address of the network users come from is recommended.
      - When given for an existing session, a different address is reported as drift.
    type: str
  ssh_host:
    description:
      - The host name or address users should connect to, used in RV(ssh_command) and RV(known_hosts).
      - Defaults to O(bind_address) when that is a specific address, else the host of O(docker_host) for C(tcp://) and
        C(ssh://), else the runner's host name. Playbooks pass the inventory host.
    type: str
  snapshot:
    description:
      - Before stopping or removing the session, commit it to the local image C(kohakuriver/<env>:vps-<name>-<unix
        seconds>) on the runner (the session is paused while it is committed).
      - An already stopped session is not committed again by O(state=stopped).
    type: bool
    default: false
  snapshot_keep:
    description: Snapshots of this session to keep, the new one included; older ones of this session only are removed.
    type: int
    default: 3
  stop_timeout:
    description: Seconds between C(SIGTERM) and C(SIGKILL) when the session is stopped.
    type: int
    default: 10
notes:
  - The module runs on the runner node, which must see O(shared_dir) when a session is created.
  - Snapshots are images of the environment's repository; M(kohakuriver.docker.image_sync) with C(prune=true) keeps
    them (it removes only superseded images no container uses), and O(snapshot_keep) bounds how many stay.
seealso:
  - module: kohakuriver.docker.vps_info
  - module: kohakuriver.docker.task
  - module: kohakuriver.docker.image_sync
'''

EXAMPLES = r'''
- name: Start a VPS of python-data-science for two users' keys
  kohakuriver.docker.vps:
    name: alice-dev
    env: python-data-science
    authorized_keys:
      - "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
      - 'from="10.0.0.0/8" ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDlK3nEpSZ0d1gSJOm2tIcBqUbLT7f7oI4xQ1d1B6J7x bob@desk'
    bind_address: 10.0.0.21
    cpus: 4
    memory: 16g
    gpus: ["0"]
  register: session

- name: Show how to log in
  ansible.builtin.debug:
    msg: "{{ session.ssh_command }}"

- name: A session with a new key pair; the private key is returned once
  kohakuriver.docker.vps:
    name: scratch
    env: python-data-science
    generate_key: true
  register: scratch
  no_log: true

- name: Stop it, keeping a snapshot of its files
  kohakuriver.docker.vps:
    name: scratch
    state: stopped
    snapshot: true
    snapshot_keep: 2

- name: Remove it
  kohakuriver.docker.vps:
    name: scratch
    state: absent
'''

RETURN = r'''
session:
  description: The session name.
  returned: always
  type: str
  sample: alice-dev
container:
  description: The session's container name.
  returned: always
  type: str
  sample: kohakuriver-vps-alice-dev
id:
  description: The container ID, V(null) when there is none.
  returned: always
  type: str
env:
  description: The session's environment.
  returned: always
  type: str
  sample: python-data-science
image:
  description: The image the session was created from.
  returned: always
  type: str
  sample: kohakuriver/python-data-science:base
image_id:
  description: The ID of that image.
  returned: always
  type: str
status:
  description: Docker's state of the container (V(running), V(exited), ...), or V(absent).
  returned: always
  type: str
  sample: running
running:
  description: Whether the session runs.
  returned: always
  type: bool
created:
  description: When the container was created (UTC).
  returned: always
  type: str
  sample: '2026-11-28T15:00:00Z'
actions:
  description: What was done (or would be in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [sync, create, start]
host:
  description: Where users connect (see O(ssh_host)).
  returned: when the session exists
  type: str
  sample: runner1.example.org
port:
  description: The runner's port for the session's SSH.
  returned: when the session exists
  type: int
  sample: 40022
bind_address:
  description: The runner address the port is bound to.
  returned: when the session exists
  type: str
  sample: 0.0.0.0
ssh_command:
  description: A ready command line to log in.
  returned: when the session exists
  type: str
  sample: ssh -p 40022 root@runner1.example.org
host_key:
  description: The session's own SSH host key (public).
  returned: when the session exists
  type: str
  sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8... kohakuriver-vps-alice-dev
host_key_fingerprint:
  description: The host key's fingerprint, as C(ssh) shows it on the first login.
  returned: when the session exists
  type: str
  sample: SHA256:3Gb0hR0Vj1O2f2I7m6UoQWcE5XvR8b8m1P5sVq4yTnA
known_hosts:
  description: A C(known_hosts) line for the session, so the first login needs no trust on first use.
  returned: when the session exists
  type: str
  sample: '[runner1.example.org]:40022 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE8...'
private_key:
  description:
    - The private key made by O(generate_key), in OpenSSH format. Returned only in the run that made it; store it
      (mode 0600) and keep the task's result out of logs with C(no_log).
  returned: when a key was generated
  type: str
public_key:
  description: The public key made by O(generate_key).
  returned: when a key was generated
  type: str
drift:
  description: Requested options the existing session does not have (it is kept as it is), each with C(option),
    C(wanted) and C(actual).
  returned: always
  type: list
  elements: dict
snapshot:
  description: The snapshot image taken in this run, or V(null).
  returned: always
  type: str
  sample: kohakuriver/python-data-science:vps-scratch-1764342000
snapshots_removed:
  description: Older snapshots of this session removed by O(snapshot_keep).
  returned: always
  type: list
  elements: str
sync:
  description: The result of the sync before the session was created (see M(kohakuriver.docker.image_sync)).
  returned: when a session was created with O(sync=true)
  type: dict
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_STOP_TIMEOUT
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import RUN_ARGUMENT_SPEC
from ansible_collections.kohakuriver.docker.plugins.module_utils.vps import ensure_session
from ansible_collections.kohakuriver.docker.plugins.module_utils.vps_options import DEFAULT_SNAPSHOT_KEEP, VpsRequest

ARGUMENT_SPEC = dict(
    RUN_ARGUMENT_SPEC,
    name=dict(type='str', required=True, aliases=['session']),
    env=dict(type='str'),
    state=dict(type='str', default='started', choices=['started', 'stopped', 'absent']),
    authorized_keys=dict(type='list', elements='str', no_log=False),
    generate_key=dict(type='bool', default=False),
    port=dict(type='int'),
    bind_address=dict(type='str'),
    ssh_host=dict(type='str'),
    snapshot=dict(type='bool', default=False),
    snapshot_keep=dict(type='int', default=DEFAULT_SNAPSHOT_KEEP),
    stop_timeout=dict(type='int', default=DEFAULT_STOP_TIMEOUT),
)


def operation(module):
    request = VpsRequest(module.params)
    return ensure_session(client_for(module), request, module.check_mode)


def main():
    module = new_module(ARGUMENT_SPEC, supports_check_mode=True, mutually_exclusive=[('authorized_keys', 'generate_key')],
                        required_if=[('state', 'started', ('env',))])
    run(module, operation)


if __name__ == '__main__':
    main()
