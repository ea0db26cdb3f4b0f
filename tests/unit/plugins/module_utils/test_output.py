"""The bounded views of output: the last lines that messages quote."""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.module_utils.output import last_lines


def test_last_lines_skips_blank_lines_and_strips_the_rest():
    assert last_lines('a\n\n  b  \n\t\nc\n\n', 2) == ['b', 'c']
    assert last_lines('one\n', 5) == ['one']
    assert last_lines('', 3) == [] and last_lines(None, 3) == []


def test_last_lines_keeps_the_end_of_long_lines_when_told():
    assert last_lines('x' * 10 + 'tail\nshort', 2, width=4) == ['tail', 'hort']
    assert last_lines('x' * 300, 1) == ['x' * 300]
