"""tests/support/file_times.py: the slowest files first, whole and in their own order, and per-file sums of a report."""

from __future__ import annotations

from types import SimpleNamespace

from support.file_times import file_times, recorded_times, slowest_first


def items(*nodeids):
    return [SimpleNamespace(nodeid=nodeid) for nodeid in nodeids]


def test_files_run_slowest_first_unknown_ones_before_all_and_each_file_keeps_its_order():
    collected = items('tests/a.py::one', 'tests/a.py::two', 'tests/b.py::one', 'tests/new.py::x[1]', 'tests/c.py::one',
                      'tests/b.py::two', 'tests/new.py::x[2]')
    ordered = [item.nodeid for item in slowest_first(collected, {'tests/a.py': 1.0, 'tests/b.py': 50.0, 'tests/c.py': 9.0})]
    assert ordered == ['tests/new.py::x[1]', 'tests/new.py::x[2]', 'tests/b.py::one', 'tests/b.py::two', 'tests/c.py::one',
                       'tests/a.py::one', 'tests/a.py::two']


def test_recorded_times_skip_comments_and_the_report_sums_setup_call_and_teardown_per_file(tmp_path):
    times = tmp_path / 'times.txt'
    times.write_text('# seconds path\n12.5 tests/integration/test_x.py\nnot a line\n')
    assert recorded_times(times) == {'tests/integration/test_x.py': 12.5}
    report = tmp_path / 'run.xml'
    report.write_text('<testsuites><testsuite>'
                      '<testcase classname="tests.unit.support.test_file_times" name="a" time="1.5"/>'
                      '<testcase classname="tests.unit.support.test_file_times.TestGroup" name="b" time="2"/>'
                      '<testcase classname="tests.integration.test_gone" name="c" time="4"/>'
                      '</testsuite></testsuites>')
    seconds, counts = file_times(report)
    assert seconds == {'tests/unit/support/test_file_times.py': 3.5, 'tests/integration/test_gone.py': 4.0}
    assert counts == {'tests/unit/support/test_file_times.py': 2, 'tests/integration/test_gone.py': 1}
