"""The pure parts of container_exec: the one-line failure message, option checks, the frame reader, the output cap."""

from __future__ import annotations

import socket
import struct
import threading

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.exec import (
    OUTPUT_LIMIT, _output_result, command_argv, exec_environment, exec_user, failure_message, frames, truncation_warning,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.output import Tail


def test_failure_message_is_one_line_with_rc_and_the_end_of_stderr():
    stderr = '\n'.join('line %d' % n for n in range(30)) + '\n\nE: Unable to locate package nope\n'
    msg = failure_message('kohakuriver-env-x', 100, 'some stdout', stderr)
    assert '\n' not in msg
    assert msg.startswith('Command failed in kohakuriver-env-x with rc 100: ')
    assert msg.endswith('E: Unable to locate package nope')
    assert 'line 29' in msg and 'line 20' not in msg


def test_failure_message_falls_back_to_stdout_then_to_no_output():
    assert failure_message('c', 1, 'only stdout\n', '').endswith('rc 1: only stdout')
    assert failure_message('c', 2, '', '').endswith('rc 2: no output')


@pytest.mark.parametrize('key', ['A=B', '', '=', 'A\0'])
def test_an_env_name_that_is_empty_or_holds_an_equals_sign_is_refused(key):
    with pytest.raises(Failure) as failure:
        exec_environment({key: 1})
    assert failure.value.msg == 'env name %r is not valid: a variable name is not empty and holds no "=" or NUL.' % (key,)


def test_env_values_become_strings_and_may_hold_equals_signs():
    assert exec_environment({'A': 'x=y', 'N': 3, 'E': None}) == {'A': 'x=y', 'N': '3', 'E': ''}
    assert exec_environment(None) == {}


def test_argv_command_and_user_are_checked():
    assert command_argv(dict(argv=['echo', 1])) == ['echo', '1']
    assert command_argv(dict(argv=None, command='echo hi')) == ['sh', '-c', 'echo hi']
    for params in (dict(argv=[]), dict(argv=['a\0b']), dict(argv=None, command=None)):
        with pytest.raises(Failure):
            command_argv(params)
    assert exec_user(None) == '' and exec_user('65534:65534') == '65534:65534'
    with pytest.raises(Failure, match='user'):
        exec_user('root\n')


def _frame(stream, data):
    return struct.pack('>BxxxI', stream, len(data)) + data


def test_frames_read_what_the_http_reader_took_before_the_socket():
    """The daemon's first frame can arrive with the response headers; it must not be lost (ssh:// lost it)."""
    ours, theirs = socket.socketpair()
    wire = _frame(1, b'unable to find user nobody2') + _frame(2, b'err') + _frame(1, b'x' * 70000)
    sender = threading.Thread(target=lambda: (theirs.sendall(wire[13:]), theirs.close()))
    sender.start()
    try:
        assert list(frames(ours, wire[:13])) == [(1, b'unable to find user nobody2'), (2, b'err'), (1, b'x' * 70000)]
    finally:
        sender.join()
        ours.close()


def test_output_keeps_the_end_of_each_stream_and_counts_every_byte():
    out, err = Tail(OUTPUT_LIMIT), Tail(OUTPUT_LIMIT)
    lines = 3 * OUTPUT_LIMIT // 10
    for number in range(lines):
        out.add(b'%09d\n' % number)
    err.add(b'warning\n')
    result = _output_result((out, err), True)
    assert result['stdout_bytes'] == lines * 10 and result['stdout_truncated']
    assert len(result['stdout']) == OUTPUT_LIMIT - 1 and result['stdout'].endswith('\n%09d' % (lines - 1))
    assert result['stderr'] == 'warning' and result['stderr_bytes'] == 8 and not result['stderr_truncated']
    warning = truncation_warning('kohakuriver-env-x', result)
    assert 'stdout %d bytes' % result['stdout_bytes'] in warning and 'stderr' not in warning.split('(')[1].split(')')[0]
    assert truncation_warning('c', _output_result((err, err), True)) is None
