#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
module: container_exec
short_description: Run a command inside an environment container
version_added: 0.1.0
description:
  - Runs a command in the running environment container C(kohakuriver-env-<name>), the scripted counterpart of an
    interactive C(container shell), and how a pipeline installs software (C(apt-get), C(apk), C(pip)) before packaging.
  - Give O(argv) (run as is) or O(command) (a string run by the container's C(sh -c), so pipes, C(&&) and
    variables work).
  - stdout and stderr are returned separately. A non-zero exit code fails the task with the end of the output in
    the message; the failed result still carries RV(rc), RV(stdout) and RV(stderr).
  - Output is capped, so the module's memory stays flat whatever the command prints. Of each stream only the
    B(last 1 MiB) (1048576 bytes) is returned; RV(stdout_bytes) and RV(stderr_bytes) count all of it, and
    RV(stdout_truncated) or RV(stderr_truncated) (with a warning) say when some was left out. A command that prints
    more than that and whose whole output matters should write it to a file, for example
    C(make > /tmp/build.log 2>&1), and the file be copied out (C(docker cp kohakuriver-env-<name>:/tmp/build.log .)),
    or written into a folder mounted from the Docker host (O(kohakuriver.docker.container#module:mounts)) and read
    there, for example with M(ansible.builtin.fetch).
  - The container must be running; a stopped or missing one fails with a message that says to start or create it.
  - Works on foreign containers of that name too (see M(kohakuriver.docker.container)), as running a command does
    not change their lifecycle.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.docker
  - kohakuriver.docker.attributes
attributes:
  check_mode:
    support: partial
    details:
      - The command is not run; the task reports changed unless O(creates) or O(removes) say it would be skipped
        (those paths are checked, which changes nothing).
      - A container that is not running yet (because an earlier task in check mode did not start it) gives a
        warning instead of a failure.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - Idempotent only with O(creates) or O(removes); otherwise the command runs, and reports changed, every time.
options:
  name:
    description:
      - The environment name; the command runs in C(kohakuriver-env-<name>).
    type: str
    required: true
  argv:
    description:
      - The command and its arguments, run without a shell.
      - Exactly one of O(argv) and O(command) is required.
    type: list
    elements: str
  command:
    description:
      - A command line run by the container's C(sh -c).
    type: str
  chdir:
    description: The working directory inside the container. Defaults to the image's working directory.
    type: str
  env:
    description:
      - Environment variables for the command, added to the container's. Values are turned into strings.
      - A name that is empty or contains C(=) is refused.
    type: dict
  user:
    description:
      - The user (name or UID, optionally C(user:group)) to run as. Defaults to the container's user.
      - A user name the container does not know fails with rc V(126) and Docker's message (C(unable to find user ...)).
    type: str
  stdin:
    description:
      - Text sent to the command's standard input, which is closed afterwards (so C(cat) ends).
      - Not possible over a TLS V(tcp://) O(docker_host), which cannot close one direction only.
    type: str
  stdin_add_newline:
    description: Add a newline to O(stdin), like M(ansible.builtin.command).
    type: bool
    default: true
  creates:
    description:
      - A path inside the container; when it exists, the command is not run.
      - Checked by the Docker daemon (the stat of the container archive API), so it needs no program in the container
        and works on images without a shell. Symbolic links are followed, as C(test -e) does, so a link whose target
        is missing does not exist. The check sees the container's files as root does, whatever O(user) is.
      - A relative path is taken from O(chdir), or else from the container's working directory.
    type: str
  removes:
    description:
      - A path inside the container; when it does not exist, the command is not run.
      - Checked like O(creates).
    type: str
  strip_empty_ends:
    description: Remove trailing newlines from RV(stdout) and RV(stderr).
    type: bool
    default: true
notes:
  - The output cap (the last 1 MiB of each stream) is fixed; see the description for how to keep a longer output.
  - The connection O(timeout) bounds the daemon's answers, not the command; a command may run and stay silent as
    long as it needs. Bound it with the task keyword C(timeout) when needed.
seealso:
  - module: kohakuriver.docker.container
'''

EXAMPLES = r'''
- name: Install build tools in a Debian-based environment, once
  kohakuriver.docker.container_exec:
    name: my-python-env
    command: apt-get update && apt-get install -y --no-install-recommends build-essential git
    creates: /usr/bin/git

- name: Install Python packages
  kohakuriver.docker.container_exec:
    name: my-python-env
    argv: [pip, install, --no-cache-dir, numpy, pandas]
    env:
      PIP_DISABLE_PIP_VERSION_CHECK: "1"

- name: Install packages in an Alpine-based environment
  kohakuriver.docker.container_exec:
    name: my-alpine-env
    command: apk add --no-cache build-base git
    creates: /usr/bin/git

- name: Write a file from stdin
  kohakuriver.docker.container_exec:
    name: my-python-env
    argv: [sh, -c, 'cat > /etc/motd']
    stdin: Welcome to my-python-env

- name: Build with a long log, kept whole in a file (the result keeps only the last 1 MiB of output)
  kohakuriver.docker.container_exec:
    name: my-python-env
    command: make -C /src > /var/log/build.log 2>&1 || { tail -n 50 /var/log/build.log; exit 1; }

- name: Read something without reporting a change
  kohakuriver.docker.container_exec:
    name: my-python-env
    argv: [python3, --version]
  register: python_version
  changed_when: false
'''

RETURN = r'''
rc:
  description: The exit code of the command (V(0) when it was skipped).
  returned: when the command ran or was skipped, also on failure
  type: int
  sample: 0
stdout:
  description: The standard output of the command; its last 1 MiB when it was longer (see RV(stdout_truncated)).
  returned: when the command ran or was skipped, also on failure
  type: str
stderr:
  description: The standard error of the command; its last 1 MiB when it was longer (see RV(stderr_truncated)).
  returned: when the command ran or was skipped, also on failure
  type: str
stdout_bytes:
  description: How many bytes the command wrote to its standard output, including any left out of RV(stdout).
  returned: when the command ran or was skipped, also on failure
  type: int
  sample: 52428800
stderr_bytes:
  description: How many bytes the command wrote to its standard error, including any left out of RV(stderr).
  returned: when the command ran or was skipped, also on failure
  type: int
  sample: 0
stdout_truncated:
  description: Whether RV(stdout) holds only the end of the output (more than 1 MiB was written).
  returned: when the command ran or was skipped, also on failure
  type: bool
  sample: false
stderr_truncated:
  description: Whether RV(stderr) holds only the end of it (more than 1 MiB was written).
  returned: when the command ran or was skipped, also on failure
  type: bool
  sample: false
stdout_lines:
  description: RV(stdout) split into lines.
  returned: when the command ran or was skipped, also on failure
  type: list
  elements: str
stderr_lines:
  description: RV(stderr) split into lines.
  returned: when the command ran or was skipped, also on failure
  type: list
  elements: str
cmd:
  description: The command as run (O(command) becomes C(sh -c <command>)).
  returned: always
  type: list
  elements: str
  sample: [sh, -c, apt-get update]
container:
  description: The container name.
  returned: always
  type: str
  sample: kohakuriver-env-my-python-env
msg:
  description: Why the command was not run (skipped, or check mode).
  returned: when the command did not run
  type: str
'''

from ansible_collections.kohakuriver.docker.plugins.module_utils.exec import ExecRequest, execute
from ansible_collections.kohakuriver.docker.plugins.module_utils.module import client_for, new_module, run

ARGUMENT_SPEC = dict(
    name=dict(type='str', required=True),
    argv=dict(type='list', elements='str'),
    command=dict(type='str'),
    chdir=dict(type='str'),
    env=dict(type='dict'),
    user=dict(type='str'),
    stdin=dict(type='str'),
    stdin_add_newline=dict(type='bool', default=True),
    creates=dict(type='str'),
    removes=dict(type='str'),
    strip_empty_ends=dict(type='bool', default=True),
)


def operation(module):
    request = ExecRequest(module.params)
    return execute(client_for(module), request, module.check_mode)


def main():
    module = new_module(ARGUMENT_SPEC, supports_check_mode=True, mutually_exclusive=[('argv', 'command')],
                        required_one_of=[('argv', 'command')])
    run(module, operation)


if __name__ == '__main__':
    main()
