"""How long each test file takes, and the slowest files first.

As a pytest plugin (tests/conftest.py loads it): the test files run in the order of tests/file_times.txt, slowest
first, so that pytest-xdist's `--dist loadfile` (with `--no-loadscope-reorder`) starts the long files at once and
ends on short ones instead of waiting for one long file at the end. A file not listed there (a new one) goes first:
it may be long. Tests keep their order within a file. Only the order changes, never what runs.

As a script, on a JUnit XML report of a run (pytest --junitxml; a test's time there is its setup, call and teardown):
    python tests/support/file_times.py report RUN.xml [N]     the N slowest files (default 15) and the total
    python tests/support/file_times.py write RUN.xml          record that run's files in tests/file_times.txt
"""

from __future__ import annotations

import collections
import sys
from xml.etree import ElementTree
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
TIMES = TESTS / 'file_times.txt'


def recorded_times(path=TIMES):
    """{test file relative to the repository: seconds} from a file of 'seconds path' lines."""
    times = {}
    if path.is_file():
        for line in path.read_text(encoding='utf-8').splitlines():
            words = line.split()
            if len(words) == 2 and not line.startswith('#'):
                times[words[1]] = float(words[0])
    return times


def slowest_first(items, times):
    """items ordered by their file's recorded time, longest first (unknown files before all); stable within a file."""
    unknown = max(times.values(), default=0.0) + 1.0
    return sorted(items, key=lambda item: -times.get(item.nodeid.split('::', 1)[0], unknown))


def pytest_collection_modifyitems(items):
    items[:] = slowest_first(items, recorded_times())


def _test_file(classname):
    """tests/x/test_y.py from a JUnit classname (tests.x.test_y or tests.x.test_y.TestClass)."""
    parts = classname.split('.')
    for end in range(len(parts), 0, -1):
        candidate = '/'.join(parts[:end]) + '.py'
        if (TESTS.parent / candidate).is_file():
            return candidate
    return '/'.join(parts) + '.py'


def file_times(junit_xml):
    """({test file: seconds}, {test file: tests}) of a JUnit XML report."""
    seconds, counts = collections.Counter(), collections.Counter()
    for case in ElementTree.parse(junit_xml).iter('testcase'):
        name = _test_file(case.get('classname', ''))
        seconds[name] += float(case.get('time') or 0)
        counts[name] += 1
    return seconds, counts


def report(junit_xml, top=15):
    seconds, counts = file_times(junit_xml)
    print('Slowest %d of %d test files (seconds of setup + call + teardown, summed over the file\'s tests):'
          % (min(top, len(seconds)), len(seconds)))
    for name, spent in seconds.most_common(top):
        print('%8.1f s  %4d tests  %s' % (spent, counts[name], name))
    print('%8.1f s  %4d tests  in all (over every worker)' % (sum(seconds.values()), sum(counts.values())))


def write(junit_xml):
    """Record the files of the report (the others keep their recorded time; files that are gone are dropped)."""
    seconds, _counts = file_times(junit_xml)
    times = dict((name, spent) for name, spent in recorded_times().items() if (TESTS.parent / name).is_file())
    times.update(seconds)
    lines = ['# seconds per test file (tests/support/file_times.py write RUN.xml); only the order the files run in',
             '# (slowest first) depends on it: refresh it when a file is added or gets much slower.']
    lines += ['%.1f %s' % (spent, name) for name, spent in sorted(times.items(), key=lambda entry: -entry[1])]
    TIMES.write_text('\n'.join(lines) + '\n', encoding='utf-8')
    print('recorded %d files (%d from %s) in %s' % (len(times), len(seconds), junit_xml, TIMES))


def main(argv):
    if len(argv) >= 2 and argv[0] == 'report':
        report(argv[1], int(argv[2]) if len(argv) > 2 else 15)
    elif len(argv) == 2 and argv[0] == 'write':
        write(argv[1])
    else:
        sys.exit(__doc__)


if __name__ == '__main__':
    main(sys.argv[1:])
