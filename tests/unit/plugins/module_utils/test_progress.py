"""The progress file: counts, rate over the window, time left, throttled and atomic writes, removal."""

from __future__ import annotations

import json
import os

from ansible_collections.kohakuriver.docker.plugins.module_utils.progress import Progress


class Clock(object):
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


class Pieces(object):
    """A stream like loadstream's: iterable, with its byte length as len()."""

    def __init__(self, pieces):
        self.pieces = pieces

    def __len__(self):
        return sum(len(piece) for piece in self.pieces)

    def __iter__(self):
        return iter(self.pieces)


def made(path, every=2.0):
    clock = Clock()
    return Progress(str(path) if path else None, every=every, window=10.0, clock=clock, wall=lambda: 1700000000.0 + clock.now), clock


def read(path):
    return json.loads(path.read_text())


def test_start_writes_at_once_and_adds_are_written_at_most_every_interval(tmp_path):
    path = tmp_path / 'progress.json'
    progress, clock = made(path)
    progress.start('loading x.tar (whole)', total=1000)
    assert read(path)['done_bytes'] == 0 and read(path)['phase'] == 'loading x.tar (whole)'
    clock.now += 1.0
    progress.add(100)
    assert read(path)['done_bytes'] == 0  # written 1 s ago: not yet
    clock.now += 1.0
    progress.add(100)
    state = read(path)
    assert state['done_bytes'] == 200 and state['total_bytes'] == 1000 and state['total_estimated'] is False
    assert state['rate_bytes_per_s'] == 100 and state['eta_seconds'] == 8
    assert state['started'] == 1700000100.0 and state['updated'] == 1700000102.0
    assert os.listdir(tmp_path) == ['progress.json']  # the temporary file was renamed over it


def test_the_rate_is_that_of_the_last_window_not_the_whole_run(tmp_path):
    path = tmp_path / 'progress.json'
    progress, clock = made(path, every=0)
    progress.start('saving', total=None)
    for _second in range(20):  # 20 s at 10 B/s ...
        clock.now += 1.0
        progress.add(10)
    for _second in range(12):  # ... then 12 s at 1000 B/s
        clock.now += 1.0
        progress.add(1000)
    state = read(path)
    assert state['rate_bytes_per_s'] >= 900 and state['eta_seconds'] is None and state['total_bytes'] is None


def test_a_new_phase_counts_from_zero_and_close_removes_the_file(tmp_path):
    path = tmp_path / 'progress.json'
    progress, clock = made(path)
    progress.start('loading (thin: 1 of 3 layers)', total=50)
    clock.now += 5
    progress.add(50)
    progress.start('loading (whole)', total=500)
    assert read(path)['done_bytes'] == 0 and read(path)['total_bytes'] == 500
    assert progress.figures()['bytes'] == 0
    progress.close()
    assert not path.exists()
    progress.close()


def test_counted_streams_keep_their_length_and_count_every_piece(tmp_path):
    progress, clock = made(tmp_path / 'p.json', every=0)
    progress.start('loading', total=6)
    counted = progress.counted(Pieces([b'ab', b'cde', b'f']))
    assert len(counted) == 6  # the HTTP client's Content-Length
    assert b''.join(counted) == b'abcdef' and progress.done == 6
    progress.consumer(memoryview(b'xy'))
    assert progress.done == 8


def test_an_unwritable_file_is_given_up_on_silently(tmp_path):
    progress, clock = made(tmp_path / 'missing' / 'progress.json')
    progress.start('saving', total=10)
    clock.now += 3
    progress.add(5)
    assert progress.path is None and progress.figures()['bytes'] == 5
    progress.close()
    nothing, clock = made(None)
    nothing.start('saving')
    nothing.add(3)
    nothing.close()
    assert nothing.figures()['bytes'] == 3
