"""The pure parts of container_exec: the one-line failure message."""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.module_utils.exec import failure_message


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
