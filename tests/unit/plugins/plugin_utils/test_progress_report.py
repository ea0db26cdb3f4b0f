"""What the controller prints of a progress file, and when it prints at all."""

from __future__ import annotations

import os

import pytest

from ansible_collections.kohakuriver.docker.plugins.plugin_utils.progress_report import (
    BadMode, chosen_mode, controller_on_terminal, figures_line, parse_state, prints, progress_line,
)


def test_the_option_wins_then_the_variable_then_the_environment_then_auto():
    assert chosen_mode('never', 'always', 'always') == 'never'
    assert chosen_mode(None, 'Always', 'never') == 'always'
    assert chosen_mode(None, '', 'never') == 'never'
    assert chosen_mode(None, None, None) == 'auto'
    with pytest.raises(BadMode, match="kohakuriver_progress is 'loud'; give one of auto, always, never"):
        chosen_mode(None, 'loud', None)


def test_auto_prints_only_on_a_terminal():
    assert prints('always', False) and prints('auto', True)
    assert not prints('auto', False) and not prints('never', True)


def test_a_pipe_is_no_terminal():
    reading, writing = os.pipe()
    try:
        child = os.fork()
        if child == 0:
            os.dup2(writing, 1)
            os.execvp('sleep', ['sleep', '5'])
        try:
            for _attempt in range(100):
                if os.readlink('/proc/%d/fd/1' % child).startswith('pipe:'):
                    break
            assert controller_on_terminal(child) is False
        finally:
            os.kill(child, 9)
            os.waitpid(child, 0)
    finally:
        os.close(reading)
        os.close(writing)
    assert controller_on_terminal(999999999) is False


def test_lines_say_bytes_done_total_rate_and_time_left():
    state = dict(phase='loading env-1.tar (whole)', done_bytes=1200000000, total_bytes=10000000000, total_estimated=False,
                 rate_bytes_per_s=85300000, eta_seconds=103)
    assert progress_line(state, 14) == 'loading env-1.tar (whole): 1.20 GB of 10.00 GB (12%), 85.3 MB/s, 1m43s left (14s)'
    state.update(total_estimated=True, done_bytes=10000000000, eta_seconds=0)
    assert progress_line(state, 3700) == ('loading env-1.tar (whole): 10.00 GB of ~10.00 GB (~100%), 85.3 MB/s, '
                                          'all sent, waiting for the daemon (1h01m)')
    assert progress_line(dict(phase='committing kohakuriver-env-x', done_bytes=0, total_bytes=None), 7) == \
        'committing kohakuriver-env-x (7s)'
    assert progress_line(None, 2) == 'starting (2s)'
    assert progress_line(dict(phase='saving', done_bytes=512, total_bytes=None, rate_bytes_per_s=None), 1) == 'saving: 512 B (1s)'


def test_only_a_progress_object_is_read():
    assert parse_state('') is None and parse_state('{"done_bytes": "1"}') is None and parse_state('[1]') is None
    assert parse_state('{not json') is None
    assert parse_state('{"done_bytes": 5, "phase": "x"}') == {'done_bytes': 5, 'phase': 'x'}


def test_figures():
    assert figures_line(1500000, 2.4, 0.6) == '1.5 MB in 2s (0.6 MB/s)'
    assert figures_line(None, 1, 1) is None and figures_line(10, 1, None) == '10 B in 1s'
