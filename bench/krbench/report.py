"""Tables of results: medians, spread, peak memory, ratio ours/theirs and the issue's targets."""

from __future__ import annotations

import dataclasses
import pstats
import re
import statistics


@dataclasses.dataclass
class Target:
    """An issue 6 target: contender's median <= ratio x the reference's median (and an extra condition)."""

    contender: str
    ratio: float
    condition: str = ''

    def describe(self, reference):
        text = '<= %.2f x %s' % (self.ratio, reference)
        return text + (' and ' + self.condition if self.condition else '')


@dataclasses.dataclass
class Row:
    name: str
    seconds: list = dataclasses.field(default_factory=list)
    rss_mb: list = dataclasses.field(default_factory=list)
    cpu: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    condition_failures: list = dataclasses.field(default_factory=list)
    rss_label: str = ''

    def add(self, sample, note=None):
        self.seconds.append(sample.seconds)
        if sample.rss_mb is not None:
            self.rss_mb.append(sample.rss_mb)
        if sample.cpu_seconds is not None:
            self.cpu.append(sample.cpu_seconds)
        if note and note not in self.notes:
            self.notes.append(note)

    @property
    def median(self):
        return statistics.median(self.seconds) if self.seconds else None

    @property
    def median_cpu(self):
        return statistics.median(self.cpu) if self.cpu else None

    @property
    def peak_rss(self):
        return max(self.rss_mb) if self.rss_mb else None


@dataclasses.dataclass
class Table:
    """One scenario on one engine: rows in contender order, the reference row's name and the targets."""

    key: str
    title: str
    reference: str
    rows: list
    targets: list = dataclasses.field(default_factory=list)
    notes: list = dataclasses.field(default_factory=list)
    error: str | None = None
    memory_target_mb: dict = dataclasses.field(default_factory=dict)

    def row(self, name):
        return next(row for row in self.rows if row.name == name)

    def ratio(self, name):
        mine, reference = self.row(name).median, self.row(self.reference).median
        if mine is None or not reference:
            return None
        return mine / reference

    def verdicts(self):
        """[(target description, 'met' | 'missed' | 'not measured', detail)] for every target of this table."""
        found = []
        for target in self.targets:
            ratio = self.ratio(target.contender)
            if ratio is None:
                found.append((target.describe(self.reference), 'not measured', ''))
                continue
            failures = self.row(target.contender).condition_failures
            met = ratio <= target.ratio and not failures
            detail = '%.2f' % ratio + ('; ' + '; '.join(failures) if failures else '')
            found.append((target.describe(self.reference), 'met' if met else 'missed', detail))
        for contender, limit in self.memory_target_mb.items():
            peak = self.row(contender).peak_rss
            if peak is None:
                found.append(('peak RSS of %s <= %d MB' % (contender, limit), 'not measured', ''))
            else:
                found.append(('peak RSS of %s <= %d MB' % (contender, limit), 'met' if peak <= limit else 'missed',
                              '%.0f MB' % peak))
        return found

    def complete(self):
        """Every row measured at least once and every ratio computable."""
        return self.error is None and all(row.seconds for row in self.rows) and all(
            self.ratio(row.name) is not None for row in self.rows)


def _seconds(value):
    return '-' if value is None else ('%.2f' % value if value < 100 else '%.1f' % value)


def _target_cell(table, row):
    cells = []
    for target in table.targets:
        if target.contender != row.name:
            continue
        ratio = table.ratio(row.name)
        if ratio is None:
            cells.append('%s: not measured' % target.describe(table.reference))
            continue
        met = ratio <= target.ratio and not row.condition_failures
        cells.append('%s: **%s**' % (target.describe(table.reference), 'met' if met else 'missed'))
    limit = table.memory_target_mb.get(row.name)
    if limit is not None:
        peak = row.peak_rss
        verdict = 'not measured' if peak is None else ('**met**' if peak <= limit else '**missed**')
        cells.append('peak RSS <= %d MB: %s' % (limit, verdict))
    return '; '.join(cells) or '-'


def markdown(table):
    """The table as GitHub markdown (also what is printed to stdout)."""
    lines = ['### %s' % table.title, '']
    if table.error:
        lines += ['**Did not complete:** %s' % table.error, '']
    lines += ['| contender | median s | min s | max s | CPU s | peak RSS MB | ratio vs %s | target | notes |' % table.reference,
              '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |']
    for row in table.rows:
        ratio = table.ratio(row.name)
        ratio_text = '-' if ratio is None else ('1.00 (reference)' if row.name == table.reference else '%.2f' % ratio)
        rss = '-' if row.peak_rss is None else '%.0f%s' % (row.peak_rss, row.rss_label)
        runs = len(row.seconds)
        notes = '; '.join(row.notes + row.condition_failures)
        lines.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
            row.name, _seconds(row.median), _seconds(min(row.seconds) if runs else None),
            _seconds(max(row.seconds) if runs else None), _seconds(row.median_cpu), rss, ratio_text, _target_cell(table, row),
            ('%d runs' % runs) + ('; ' + notes if notes else '')))
    lines.append('')
    lines += table.notes
    if table.notes:
        lines.append('')
    return '\n'.join(lines)


def summary(tables):
    """Every target of every table with its verdict, as a markdown list."""
    lines = ['## Targets', '']
    for table in tables:
        for description, verdict, detail in table.verdicts():
            lines.append('- %s — %s: **%s**%s' % (table.title, description, verdict, ' (%s)' % detail if detail else ''))
    if len(lines) == 2:
        lines.append('- (no targets in the scenarios run)')
    return '\n'.join(lines) + '\n'


_CATEGORIES = (
    ('waiting on the Docker daemon (socket send/receive)', ("'sendall'", "'send'", "'recv", "'poll'", "'select'")),
    ('sha256', ("_hashlib.HASH",)),
    ('reading the tarball', ("'read' of '_io", "'readinto'", "'seek'")),
    ('writing files', ("'write' of '_io", "posix.write", "'fsync'", "posix.fsync")),
    ('importing modules (interpreter start-up is not seen by cProfile)', ("importlib", "marshal", "builtins.compile", "'exec'")),
)


def profile_notes(path, label, wall, ours=(), rate=250):
    """A short markdown summary of a profile: py-spy raw stacks (text) or cProfile statistics (binary)."""
    with open(path, 'rb') as handle:
        if handle.read(7) == b'thread ':
            return _py_spy_notes(path, label, wall, ours, rate)
    return _cprofile_notes(path, label, wall)


_FRAME = re.compile(r'^(?P<function>.*) \((?P<file>[^()]*?):(?P<line>\d+)\)$')
_WAIT_FILES = ('socket.py', 'http/client.py', 'ssl.py', 'selectors.py')
_THREAD_FILES = ('threading.py', 'queue.py', 'concurrent/futures/')


def _frame(text):
    match = _FRAME.match(text)
    return (match.group('function'), match.group('file')) if match else (text, '')


def _is_ours(text, ours):
    function, file_name = _frame(text)
    del function
    return bool(file_name) and file_name.rsplit('/', 1)[-1] in ours and ('/' not in file_name or 'kohakuriver' in file_name)


def _category(frames, ours):
    function, file_name = _frame(frames[-1])
    if any(file_name.endswith(name) or name in file_name for name in _WAIT_FILES) or 'sendall' in function:
        return 'waiting on the Docker daemon (socket)'
    if any(name in file_name for name in _THREAD_FILES):
        return 'waiting for its own threads (queues, locks)'
    if any('importlib' in frame for frame in frames):
        return 'importing modules'
    if _is_ours(frames[-1], ours):
        return 'running the collection\'s code (its hashing, parsing and writes included)'
    return 'other Python code (SDK, JSON, Ansible)'


def _py_spy_notes(path, label, wall, ours, rate):
    threads, categories, places = {}, {}, {}
    with open(path, encoding='utf-8', errors='replace') as handle:
        for line in handle:
            stack, dummy, count = line.rstrip('\n').rpartition(' ')
            if not stack or not count.isdigit():
                continue
            seconds = int(count) / float(rate)
            frames = stack.split(';')
            thread = frames[0].split(': ', 1)[1] if ': ' in frames[0] else 'MainThread'
            thread = 'main' if thread == 'MainThread' else thread
            threads[thread] = threads.get(thread, 0.0) + seconds
            if thread == 'main':
                category = _category(frames[1:], ours) if len(frames) > 1 else 'interpreter start-up and exit'
                categories[category] = categories.get(category, 0.0) + seconds
            mine = [index for index, frame in enumerate(frames) if _is_ours(frame, ours)]
            if mine:
                callee = _frame(frames[mine[-1] + 1])[0] if mine[-1] + 1 < len(frames) else '(itself)'
                place = '%-10s %s -> %s' % (thread[:10], frames[mine[-1]], callee)
            else:
                place = '%-10s outside the collection: %s' % (thread[:10], _frame(frames[-1])[0] if len(frames) > 1 else '-')
            places[place] = places.get(place, 0.0) + seconds
    lines = ['Profile of one more run of %s under py-spy (%.2f s wall; samples of every thread, idle included):' % (label, wall),
             '', '```', 'seconds sampled per thread: ' + ', '.join('%s %.2f' % item for item in sorted(threads.items(), key=lambda i: -i[1])),
             '  the main thread (its time is the wall time):']
    for name, seconds in sorted(categories.items(), key=lambda item: -item[1]):
        lines.append('%7.2f s  %s' % (seconds, name))
    lines.append('  where, in every thread (thread, deepest frame of the collection -> what it was calling):')
    for place, seconds in sorted(places.items(), key=lambda item: -item[1])[:12]:
        lines.append('%7.2f s  %s' % (seconds, place))
    lines += ['```', '']
    return lines


def _cprofile_notes(path, label, wall):
    """Own time per category and the top functions of a cProfile file (main thread only)."""
    stats = pstats.Stats(str(path))
    entries = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)  # pylint: disable=no-member
    total = sum(value[2] for value in dict(entries).values()) or 1e-9
    categories = dict((category[0], 0.0) for category in _CATEGORIES)
    for key, value in entries:
        where = '%s %s' % (key[0], key[2])
        for name, needles in _CATEGORIES:
            if any(needle in where for needle in needles):
                categories[name] += value[2]
                break
    lines = ['Profile of one more run of %s under cProfile (%.2f s wall, %.2f s in profiled code of the main thread):'
             % (label, wall, total),
             '', '```']
    for name, seconds in categories.items():
        lines.append('%7.2f s %5.1f %%  %s' % (seconds, 100 * seconds / total, name))
    lines.append('  top functions by own time:')
    for (file_name, line, function), value in entries[:10]:
        short = '/'.join(file_name.split('/')[-2:]) if '/' in file_name else file_name
        lines.append('%7.2f s %5.1f %%  %s (%s:%d)' % (value[2], 100 * value[2] / total, function, short, line))
    lines += ['```', '']
    return lines
