# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running one command inside a running environment container through the exec API.

stdout and stderr come back separately (the exec stream is multiplexed without a TTY); stdin is written by a
thread while the output is read, so a command that answers while it reads never deadlocks, and the write side
is closed afterwards so commands like `cat` see end of file.
"""

from __future__ import annotations

import socket
import ssl
import threading

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import explain
from ansible_collections.kohakuriver.docker.plugins.module_utils.container import inspect_container
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import describe
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

try:
    from docker.errors import APIError
    from docker.utils.socket import STDERR, STDOUT, frames_iter
except ImportError:
    APIError = Exception
    STDOUT, STDERR = 1, 2

MESSAGE_LINES = 10


def running_container(client, name, check_mode=False):
    """The inspect of a running container name; (None, why) in check mode when it is not (yet) running."""
    attrs = inspect_container(client, name)
    if attrs and (attrs.get('State') or {}).get('Status') == 'running':
        return attrs, None
    if attrs:
        why = '%s is %s; start it first (kohakuriver.docker.container with state: started).' % (
            name, describe(attrs)['status'])
    else:
        why = '%s does not exist; create it first with kohakuriver.docker.container.' % name
    if check_mode:
        return None, why
    raise Failure(why)


def _raw(sock):
    return getattr(sock, '_sock', sock)


def _close_write(sock):
    raw = _raw(sock)
    if hasattr(raw, 'shutdown_write'):
        raw.shutdown_write()
    else:
        raw.shutdown(socket.SHUT_WR)


def _feed(sock, data):
    try:
        if data:
            _raw(sock).sendall(data)
        _close_write(sock)
    except (OSError, EOFError):
        pass  # the command ended without reading all of its input; its exit code tells the rest


def run(client, container_id, argv, chdir=None, env=None, user=None, stdin=None):
    """(rc, stdout bytes, stderr bytes) of argv run inside the container."""
    try:
        exec_id = client.api.exec_create(container_id, argv, stdout=True, stderr=True, stdin=stdin is not None,
                                         tty=False, environment=env or None, workdir=chdir or None,
                                         user=user or '')['Id']
        sock = client.api.exec_start(exec_id, tty=False, socket=True)
    except APIError as exc:
        raise Failure('Cannot run %s in the container: %s' % (argv[0], explain(exc)))
    raw = _raw(sock)
    if stdin is not None and isinstance(raw, ssl.SSLSocket):
        sock.close()
        raise Failure('stdin cannot be sent over a TLS tcp:// connection (TLS has no half-close); '
                      'use a unix:// or ssh:// docker_host, or pass the data in the command.')
    # The connection timeout bounds the daemon's answers, not how long a command may stay silent.
    raw.settimeout(None)
    feeder = None
    if stdin is not None:
        feeder = threading.Thread(target=_feed, args=(sock, stdin.encode('utf-8')))
        feeder.daemon = True
        feeder.start()
    chunks = {STDOUT: [], STDERR: []}
    try:
        for stream, data in frames_iter(sock, tty=False):
            chunks.get(stream, chunks[STDOUT]).append(data)
    finally:
        if feeder:
            feeder.join()
        sock.close()
    rc = client.api.exec_inspect(exec_id).get('ExitCode')
    return rc, b''.join(chunks[STDOUT]), b''.join(chunks[STDERR])


def path_exists(client, container_id, path):
    rc = run(client, container_id, ['test', '-e', path])[0]
    if rc not in (0, 1):
        raise Failure('Cannot check %s in the container: "test -e" exited with %s.' % (path, rc))
    return rc == 0


def _text(data, strip):
    text = data.decode('utf-8', 'replace')
    return text.rstrip('\r\n') if strip else text


def failure_message(name, rc, stdout, stderr):
    """One line: the exit code and the last lines of stderr (or stdout when stderr is empty)."""
    lines = [line for line in (stderr or stdout).splitlines() if line.strip()][-MESSAGE_LINES:]
    text = ' | '.join(line.strip() for line in lines) or 'no output'
    return 'Command failed in %s with rc %s: %s' % (name, rc, text)


def execute(client, name, params, check_mode=False):
    """The container_exec operation on container name: its result dict, or Failure carrying rc/stdout/stderr."""
    if params.get('argv') is not None and not params['argv']:
        raise Failure('argv is empty: give the command and its arguments, or use command.')
    argv = list(params['argv']) if params.get('argv') else ['sh', '-c', params['command']]
    attrs, not_running = running_container(client, name, check_mode)
    result = dict(changed=False, cmd=argv, container=name)
    if not_running:
        result.update(changed=True, msg='Would run the command; %s' % not_running, warnings=[not_running])
        return result
    for option, skip_when_exists in (('creates', True), ('removes', False)):
        path = params.get(option)
        if path and path_exists(client, attrs['Id'], path) == skip_when_exists:
            why = 'exists' if skip_when_exists else 'does not exist'
            result.update(rc=0, stdout='', stderr='', stdout_lines=[], stderr_lines=[],
                          msg='Did not run the command since %s %s.' % (path, why))
            return result
    if check_mode:
        result.update(changed=True, msg='Would run the command.')
        return result
    env = dict((str(k), str(v)) for k, v in (params.get('env') or {}).items())
    stdin = params.get('stdin')
    if stdin is not None and params.get('stdin_add_newline', True):
        stdin += '\n'
    rc, out, err = run(client, attrs['Id'], argv, chdir=params.get('chdir'), env=env, user=params.get('user'),
                       stdin=stdin)
    strip = params.get('strip_empty_ends', True)
    stdout, stderr = _text(out, strip), _text(err, strip)
    result.update(changed=True, rc=rc, stdout=stdout, stderr=stderr, stdout_lines=stdout.splitlines(),
                  stderr_lines=stderr.splitlines())
    if rc != 0:
        raise Failure(failure_message(name, rc, stdout, stderr), **result)
    return result
