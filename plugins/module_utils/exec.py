# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running one command inside a running environment container through the exec API.

stdout and stderr come back separately (the exec stream is multiplexed without a TTY); stdin is written by a
thread while the output is read, so a command that answers while it reads never deadlocks, and the write side
is closed afterwards so commands like `cat` see end of file.

Output streams: each stream keeps its last OUTPUT_LIMIT bytes (output.Tail) and counts the rest, so memory stays flat
however much a command prints. creates/removes ask the daemon for a stat of the path (client.path_stat), so they
need no program in the container.
"""

from __future__ import annotations

import posixpath
import socket
import ssl
import struct
import threading

from ansible_collections.kohakuriver.docker.plugins.module_utils.client import (
    APIError, ExecStream, explain, inspect_container, path_stat,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import describe
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import container_name, validate_env_name
from ansible_collections.kohakuriver.docker.plugins.module_utils.output import Tail, last_lines

STDOUT, STDERR = 1, 2
MESSAGE_LINES = 10
OUTPUT_LIMIT = 1024 * 1024  # bytes of each stream kept in the result: its end
RECV_BYTES = 64 * 1024
MAX_LINKS = 40  # symbolic links followed for creates/removes, as Linux does


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


def feed_stdin(sock, data):
    try:
        if data:
            _raw(sock).sendall(data)
        _close_write(sock)
    except (OSError, EOFError):
        pass  # the command ended without reading all of its input; its exit code tells the rest


def frames(sock, read_ahead=b''):
    """(stream, bytes) frames of a multiplexed exec stream: first from read_ahead, then from the socket."""
    pending = bytearray(read_ahead)
    while True:
        while len(pending) >= 8:
            size = struct.unpack('>I', bytes(pending[4:8]))[0]
            if len(pending) < 8 + size:
                break
            yield pending[0], bytes(pending[8:8 + size])
            del pending[:8 + size]
        data = _raw(sock).recv(RECV_BYTES)
        if not data:
            return
        pending += data


def run(client, container_id, argv, chdir=None, env=None, user=None, stdin=None, limit=OUTPUT_LIMIT):
    """(rc, stdout Tail, stderr Tail) of argv run inside the container; each Tail holds the last `limit` bytes."""
    try:
        exec_id = client.api.exec_create(container_id, argv, stdout=True, stderr=True, stdin=stdin is not None,
                                         tty=False, environment=env or None, workdir=chdir or None,
                                         user=user or '')['Id']
        stream = ExecStream(client, exec_id)
    except APIError as exc:
        raise Failure('Cannot run %r in the container: %s' % (argv[0], explain(exc)))
    sock = stream.sock
    raw = _raw(sock)
    if stdin is not None and isinstance(raw, ssl.SSLSocket):
        stream.close()
        raise Failure('stdin cannot be sent over a TLS tcp:// connection (TLS has no half-close); '
                      'use a unix:// or ssh:// docker_host, or pass the data in the command.')
    # The connection timeout bounds the daemon's answers, not how long a command may stay silent.
    raw.settimeout(None)
    feeder = None
    if stdin is not None:
        feeder = threading.Thread(target=feed_stdin, args=(sock, stdin.encode('utf-8')))
        feeder.daemon = True
        feeder.start()
    tails = {STDOUT: Tail(limit), STDERR: Tail(limit)}
    try:
        for number, data in frames(sock, stream.read_ahead):
            tails.get(number, tails[STDOUT]).add(data)
    finally:
        if feeder:
            feeder.join()
        stream.close()
    rc = client.api.exec_inspect(exec_id).get('ExitCode')
    return rc, tails[STDOUT], tails[STDERR]


def path_exists(client, container_id, path, base='/'):
    """Whether path exists in the container, following symbolic links as `test -e` does (a dangling link does not
    exist). A relative path is taken from base (the command's working directory)."""
    path = posixpath.join(base or '/', path)
    try:
        for _hop in range(MAX_LINKS):
            stat = path_stat(client, container_id, path)
            if stat is None:
                return False
            if not stat.get('linkTarget'):
                return True
            path = stat['linkTarget']
    except APIError as exc:
        raise Failure('Cannot check %r in the container: %s' % (path, explain(exc)))
    raise Failure('Cannot check %r in the container: more than %d symbolic links.' % (path, MAX_LINKS))


def _text(tail, strip):
    text = tail.text()
    return text.rstrip('\r\n') if strip else text


def failure_message(name, rc, stdout, stderr):
    """One line: the exit code and the last lines of stderr (or stdout when stderr is empty)."""
    text = ' | '.join(last_lines(stderr or stdout, MESSAGE_LINES)) or 'no output'
    return 'Command failed in %s with rc %s: %s' % (name, rc, text)


def _no_nul(text, what):
    if '\0' in text:
        raise Failure('%s %r contains a NUL character, which no command line or environment can hold.' % (what, text))
    return text


def command_argv(params):
    """The argv to run: argv as given, or sh -c command."""
    if params.get('argv') is not None:
        if not params['argv']:
            raise Failure('argv is empty: give the command and its arguments, or use command.')
        return [_no_nul(str(arg), 'argv entry') for arg in params['argv']]
    command = params.get('command')
    if not isinstance(command, str):
        raise Failure('Give argv (the command and its arguments) or command (a command line for sh -c).')
    return ['sh', '-c', _no_nul(command, 'command')]


def exec_environment(env):
    """The env option as NAME=value pairs for Docker; a name that is empty or holds "=" is refused."""
    pairs = {}
    for key, value in (env or {}).items():
        key = str(key)
        if not key or '=' in key or '\0' in key:
            raise Failure('env name %r is not valid: a variable name is not empty and holds no "=" or NUL.' % (key,))
        value = '' if value is None else str(value)
        pairs[key] = _no_nul(value, 'env %r value' % key)
    return pairs


def exec_user(user):
    """The user option for Docker: '' for the container's user."""
    if user is None:
        return ''
    user = str(user)
    if any(not char.isprintable() for char in user):
        raise Failure('user %r is not valid: give a user name or UID, optionally user:group.' % (user,))
    return user


def _output_result(tails, strip):
    result = {}
    for stream, tail in zip(('stdout', 'stderr'), tails):
        text = _text(tail, strip)
        result.update({stream: text, stream + '_lines': text.splitlines(), stream + '_bytes': tail.total,
                       stream + '_truncated': tail.truncated})
    return result


def truncation_warning(name, result, limit=OUTPUT_LIMIT):
    streams = [stream for stream in ('stdout', 'stderr') if result.get(stream + '_truncated')]
    if not streams:
        return None
    sizes = ', '.join('%s %d bytes' % (stream, result[stream + '_bytes']) for stream in streams)
    return ('The command in %s printed more than %d bytes (%s); only the last %d bytes of each are returned. Redirect '
            'the output to a file (command: "... > /tmp/out.log 2>&1") and copy it out with docker cp, or write it '
            'into a folder mounted from the Docker host.' % (name, limit, sizes, limit))


class ExecRequest(object):
    """The validated parameters of one container_exec task; bad input fails here, before any Docker call."""

    def __init__(self, params):
        self.name = container_name(validate_env_name(params.get('name')))
        self.argv = command_argv(params)
        self.env = exec_environment(params.get('env'))
        self.user = exec_user(params.get('user'))
        self.chdir = params.get('chdir')
        self.creates = params.get('creates')
        self.removes = params.get('removes')
        self.stdin = params.get('stdin')
        if self.stdin is not None and params.get('stdin_add_newline', True):
            self.stdin += '\n'
        self.strip_empty_ends = params.get('strip_empty_ends', True)


def execute(client, request, check_mode=False):
    """The container_exec operation: its result dict, or Failure carrying rc/stdout/stderr."""
    name = request.name
    attrs, not_running = running_container(client, name, check_mode)
    result = dict(changed=False, cmd=request.argv, container=name)
    if not_running:
        result.update(changed=True, msg='Would run the command; %s' % not_running, warnings=[not_running])
        return result
    workdir = request.chdir or (attrs.get('Config') or {}).get('WorkingDir') or '/'
    for path, skip_when_exists in ((request.creates, True), (request.removes, False)):
        if path and path_exists(client, attrs['Id'], path, workdir) == skip_when_exists:
            why = 'exists' if skip_when_exists else 'does not exist'
            result.update(rc=0, msg='Did not run the command since %s %s.' % (path, why),
                          **_output_result((Tail(), Tail()), True))
            return result
    if check_mode:
        result.update(changed=True, msg='Would run the command.')
        return result
    rc, out, err = run(client, attrs['Id'], request.argv, chdir=request.chdir, env=request.env, user=request.user,
                       stdin=request.stdin)
    result.update(changed=True, rc=rc, **_output_result((out, err), request.strip_empty_ends))
    warning = truncation_warning(name, result)
    if warning:
        result['warnings'] = [warning]
    if rc != 0:
        raise Failure(failure_message(name, rc, result['stdout'], result['stderr']), **result)
    return result
