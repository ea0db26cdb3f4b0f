# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
name: env
short_description: Run tasks inside an environment container on the Host, over the Docker API
version_added: 0.2.0
description:
  - An inventory host that is an environment (the container C(kohakuriver-env-<name>) on the Host, made by
    M(kohakuriver.docker.container) or the C(environment) role), reached through the Docker SDK over the same daemon
    options as the modules (a unix socket, V(tcp://) with TLS, or V(ssh://)).
  - Commands run through the exec API as root (or O(remote_user)), with no C(become); files travel through the archive
    API as streams, so a file of any size takes little memory on the controller and needs no program in the container.
  - Only running containers labelled as this collection's are used; this connection never starts, creates or
    changes a container. Set O(adopt) to use one made by other means under the same name.
  - Modules need Python in the image; interpreter discovery finds it. On an image without Python, M(ansible.builtin.raw)
    works and a module fails with a message that names the missing interpreter.
author:
  - kohakuriver.docker contributors (@kohakuriver)
extends_documentation_fragment:
  - kohakuriver.docker.connection
options:
  remote_addr:
    description:
      - The name of the environment; the connection uses its container C(kohakuriver-env-<remote_addr>).
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  remote_user:
    description:
      - The user (name or C(uid[:gid])) commands run as inside the container, and who owns the files sent to it.
    type: str
    default: root
    vars:
      - name: ansible_user
    keyword:
      - name: remote_user
  adopt:
    description:
      - Use a container with the environment's name that does not carry the label C(io.kohakuriver.docker.managed=true),
        such as one made by hand. Without it such a container is refused.
    type: bool
    default: false
    vars:
      - name: kohakuriver_env_adopt
  pipelining:
    description:
      - Send modules to Python on the exec's stdin instead of copying them into the container first, which saves round trips.
      - Turned off by itself for a TLS V(tcp://) daemon, where stdin cannot be closed without closing the connection.
    type: bool
    default: true
    vars:
      - name: ansible_pipelining
      - name: kohakuriver_env_pipelining
    env:
      - name: ANSIBLE_PIPELINING
    ini:
      - section: defaults
        key: pipelining
      - section: connection
        key: pipelining
notes:
  - Interpreter discovery runs inside the container. Do not give these hosts the controller's
    C(ansible_python_interpreter) (an inventory that sets it for C(all) would); leave it unset or V(auto_silent).
  - C(become) with a password prompt is not supported; the exec user is root unless O(remote_user) says otherwise.
'''

EXAMPLES = r'''
# inventory.yml: the environment "ds" on the Host, reached through the Host's Docker socket
# all:
#   children:
#     environments:
#       hosts:
#         ds:
#       vars:
#         ansible_connection: kohakuriver.docker.env
#         kohakuriver_docker_host: unix:///var/run/docker.sock

- name: Customise the environment ds
  hosts: environments
  gather_facts: false
  tasks:
    - name: Install a package
      ansible.builtin.apt:
        name: git
        update_cache: true
    - name: Configure the application
      ansible.builtin.lineinfile:
        path: /etc/app.conf
        line: threads = 8
        create: true
        mode: "0644"
'''

import os
import threading

from ansible.errors import AnsibleConnectionFailure, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

from ansible_collections.kohakuriver.docker.plugins.module_utils import client as docker_client
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_files import ChunkReader, resolve_links
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.exec import feed_stdin, frames
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_DOCKER_HOST, container_name, validate_env_name
from ansible_collections.kohakuriver.docker.plugins.plugin_utils.env_transfer import (
    CHUNK, container_problem, file_tar, is_folder, remote_path, write_member,
)

display = Display()

DAEMON_OPTIONS = ('docker_host', 'api_version', 'timeout', 'tls', 'validate_certs', 'ca_path', 'client_cert', 'client_key')
ROOT = (0, 0)
STDOUT = 1
STDERR = 2


class Connection(ConnectionBase):
    """Commands and files of one environment container, through the Docker API."""

    transport = 'kohakuriver.docker.env'
    has_pipelining = True
    has_tty = False

    def __init__(self, *args, **kwargs):
        super(Connection, self).__init__(*args, **kwargs)
        self._client = None
        self._container_id = None
        self._ids = None

    # -- connecting -----------------------------------------------------------------------------------------------

    def _where(self):
        return '%s on %s' % (container_name(self.get_option('remote_addr') or '?'), self._docker_host())

    def _docker_host(self):
        return self.get_option('docker_host') or DEFAULT_DOCKER_HOST

    def _uses_tls(self):
        return bool(self.get_option('tls') or self.get_option('validate_certs'))

    def _connect(self):
        if self._connected:
            return self
        try:
            env = validate_env_name(self.get_option('remote_addr'), 'The environment name (ansible_host)')
        except Failure as failure:
            raise AnsibleConnectionFailure(failure.msg)
        if docker_client.DOCKER_SDK_IMPORT_ERROR:
            raise AnsibleConnectionFailure('The kohakuriver.docker.env connection needs the Docker SDK for Python on the '
                                           'controller: install the "docker" package into the Python that runs Ansible.')
        settings = dict((option, self.get_option(option)) for option in DAEMON_OPTIONS)
        display.vvv('ESTABLISH KOHAKURIVER ENV CONNECTION TO %s ON %s' % (env, settings['docker_host']), host=env)
        try:
            self._client = docker_client.connect(**settings)
            attrs = docker_client.inspect_container(self._client, container_name(env))
        except Failure as failure:
            raise AnsibleConnectionFailure(failure.msg)
        except docker_client.DOCKER_ERRORS as exc:
            raise AnsibleConnectionFailure('Cannot inspect %s: %s' % (self._where(), docker_client.explain(exc)))
        problem = container_problem(attrs, env, container_name(env), self._docker_host(), self.get_option('adopt'))
        if problem:
            raise AnsibleConnectionFailure(problem)
        self._container_id = attrs['Id']
        self._connected = True
        return self

    def is_pipelining_enabled(self, wrap_async=False):
        return not self._uses_tls() and super(Connection, self).is_pipelining_enabled(wrap_async)

    def close(self):
        if self._client is not None:
            self._client.close()
        self._client = None
        self._connected = False

    def reset(self):
        self.close()
        self._ids = None

    # -- commands -------------------------------------------------------------------------------------------------

    def exec_command(self, cmd, in_data=None, sudoable=True):
        super(Connection, self).exec_command(cmd, in_data=in_data, sudoable=sudoable)
        if sudoable and self.become and self.become.expect_prompt():
            raise AnsibleConnectionFailure('become with a password prompt is not supported by kohakuriver.docker.env: '
                                           'commands already run as root there; drop become, or set ansible_user.')
        argv = [self._play_context.executable or '/bin/sh', '-c', to_text(cmd, errors='surrogate_or_strict')]
        display.vvv('EXEC %s%s' % (argv, ' with %d bytes on stdin' % len(in_data) if in_data is not None else ''),
                    host=self.get_option('remote_addr'))
        if in_data is not None and self._uses_tls():
            raise AnsibleConnectionFailure('stdin cannot be sent over a TLS tcp:// connection (TLS has no half-close): '
                                           'set kohakuriver_env_pipelining: false, or use a unix:// or ssh:// docker_host.')
        return self._run(argv, in_data)

    def _run(self, argv, in_data=None):
        """(rc, stdout, stderr) of argv in the container, stdin fed from in_data while the output is read."""
        api = self._client.api
        try:
            exec_id = api.exec_create(self._container_id, argv, stdout=True, stderr=True, stdin=in_data is not None,
                                      tty=False, user=self._exec_user())['Id']
            stream = docker_client.ExecStream(self._client, exec_id)
        except docker_client.DOCKER_ERRORS as exc:
            raise AnsibleConnectionFailure('Cannot run a command in %s: %s' % (self._where(), docker_client.explain(exc)))
        output = {STDOUT: [], STDERR: []}
        feeder = None
        try:
            getattr(stream.sock, '_sock', stream.sock).settimeout(None)  # a command may be silent for long
            if in_data is not None:
                feeder = threading.Thread(target=feed_stdin, args=(stream.sock, to_bytes(in_data)))
                feeder.daemon = True
                feeder.start()
            for number, data in frames(stream.sock, stream.read_ahead):
                output.get(number, output[STDOUT]).append(data)
            if feeder is not None:
                feeder.join()
            rc = api.exec_inspect(exec_id).get('ExitCode')
        except (OSError, EOFError) + docker_client.DOCKER_ERRORS as exc:
            raise AnsibleConnectionFailure('Lost the Docker daemon while a command ran in %s: %s'
                                           % (self._where(), docker_client.explain(exc)))
        finally:
            stream.close()
        if rc is None:
            raise AnsibleConnectionFailure('A command in %s ended without an exit code: did the container stop?'
                                           % self._where())
        return rc, b''.join(output[STDOUT]), b''.join(output[STDERR])

    def _exec_user(self):
        user = self.get_option('remote_user')
        return '' if user in (None, '', 'root', '0') else user

    def _owner(self):
        """(uid, gid) of the exec user, for the files sent into the container."""
        if not self._exec_user():
            return ROOT
        if self._ids is None:
            rc, stdout, stderr = self._run(['sh', '-c', 'id -u && id -g'])
            try:
                if rc != 0:
                    raise ValueError(to_text(stderr or stdout).strip())
                uid, gid = (int(line) for line in stdout.split())
            except ValueError as exc:
                raise AnsibleConnectionFailure('Cannot tell the user and group IDs of %r in %s: %s'
                                               % (self._exec_user(), self._where(), exc))
            self._ids = (uid, gid)
        return self._ids

    # -- files ----------------------------------------------------------------------------------------------------

    def put_file(self, in_path, out_path):
        super(Connection, self).put_file(in_path, out_path)
        display.vvv('PUT %s TO %s' % (in_path, out_path), host=self.get_option('remote_addr'))
        local = to_bytes(in_path, errors='surrogate_or_strict')
        if not os.path.isfile(local):
            raise AnsibleFileNotFound('%s does not exist or is not a file on the controller.' % in_path)
        uid, gid = self._owner()
        try:
            path, found = resolve_links(self._client, self._container_id, remote_path(out_path))
            if is_folder(found):
                raise Failure('Cannot put a file at %s in %s: it is a folder.' % (out_path, self._where()))
            folder, name = path.rsplit('/', 1)
            with open(local, 'rb') as source:
                self._client.api.put_archive(self._container_id, folder or '/', file_tar(source, name, uid, gid))
        except Failure as failure:
            raise AnsibleConnectionFailure(failure.msg)
        except docker_client.NotFound as exc:
            raise AnsibleConnectionFailure('Cannot put %s in %s: its folder does not exist (%s).'
                                           % (out_path, self._where(), docker_client.explain(exc)))
        except (OSError,) + docker_client.DOCKER_ERRORS as exc:
            raise AnsibleConnectionFailure('Cannot put %s in %s: %s' % (out_path, self._where(), docker_client.explain(exc)))

    def fetch_file(self, in_path, out_path):
        super(Connection, self).fetch_file(in_path, out_path)
        display.vvv('FETCH %s TO %s' % (in_path, out_path), host=self.get_option('remote_addr'))
        what = '%s in %s' % (in_path, self._where())
        try:
            path, found = resolve_links(self._client, self._container_id, remote_path(in_path))
            if found is None:
                raise AnsibleFileNotFound('%s does not exist.' % what)
            if is_folder(found):
                raise Failure('Cannot fetch %s: it is a folder.' % what)
            chunks, _stat = self._client.api.get_archive(self._container_id, path, chunk_size=CHUNK)
            try:
                write_member(ChunkReader(chunks), to_text(out_path, errors='surrogate_or_strict'), what)
            finally:
                getattr(chunks, 'close', lambda: None)()
        except Failure as failure:
            raise AnsibleConnectionFailure(failure.msg)
        except (OSError,) + docker_client.DOCKER_ERRORS as exc:
            raise AnsibleConnectionFailure('Cannot fetch %s: %s' % (what, docker_client.explain(exc)))
