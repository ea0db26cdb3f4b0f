"""Which names `testbed.py up --fresh` counts as the project's own (tests/testbed/fresh.py is_project_name)."""

from __future__ import annotations

import pytest

from testbed.fresh import is_project_name


@pytest.mark.parametrize('name', [
    'kohakuriver-env-krtest-3d6b3bcd0e', 'kohakuriver/krtest-3d6b3bcd0e', '127.0.0.1:5000/krtest-0a1b/busybox',
    'krtest-0a1b', 'kohakuriver-env-krbench-run1', 'kohakuriver/krbench-x1',
])
def test_names_the_tests_and_benchmarks_give_are_the_projects(name):
    assert is_project_name(name)


@pytest.mark.parametrize('name', [
    'kohakuriver-env-python-data-science', 'kohakuriver/python-data-science', 'busybox', 'mykrtest-1', 'krtest',
    'krtest-', 'someone/krtestx-1', '', None,
])
def test_other_names_are_not(name):
    assert not is_project_name(name)
