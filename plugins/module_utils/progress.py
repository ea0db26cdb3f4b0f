# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A progress file: a stream's byte count, total, rate and time left, rewritten now and then while the stream runs.

A module cannot print while it runs, so a long stream (packaging's docker save, image_sync's load) tells its progress
through a small JSON file that a watcher reads (the action plugin of the module, on the controller, see
plugin_utils/progress_action.py). The file holds one object:
{"phase", "done_bytes", "total_bytes" (null when unknown), "total_estimated", "rate_bytes_per_s" (over the last
WINDOW seconds), "eta_seconds" (null when unknown), "started", "updated" (unix seconds)}.
It is replaced whole (a temporary file renamed over it, so a reader never sees half of one), at most once every
`every` seconds, and removed by close(). Progress is best effort: a file that cannot be written is given up on in
silence, never failing the stream it describes.
"""

from __future__ import annotations

import json
import os
import threading
import time

EVERY = 2.0
WINDOW = 10.0
# The options of the modules that write one (doc fragment kohakuriver.docker.progress); `progress` is read by their
# action plugin on the controller, the module itself ignores it.
PROGRESS_ARGUMENT_SPEC = dict(
    progress=dict(type='str', choices=['auto', 'always', 'never']),
    progress_file=dict(type='path'),
)


class Progress(object):
    """Byte counts of one stream at a time, written to path (None: counted, nothing written)."""

    def __init__(self, path, every=EVERY, window=WINDOW, clock=time.monotonic, wall=time.time):
        self.path = path
        self.every = every
        self.window = window
        self.clock = clock
        self.wall = wall
        self.lock = threading.Lock()
        self.phase = None
        self.total = None
        self.estimated = False
        self.done = 0
        self.started = None
        self.written_at = None
        self.samples = []

    def start(self, phase, total=None, estimated=False):
        """A new phase: counts start again from 0 (total: its expected bytes, or None); written at once."""
        with self.lock:
            self.phase, self.total, self.estimated = phase, total, estimated
            self.done = 0
            self.started = self.clock()
            self.samples = [(self.started, 0)]
            self._write(self.started)

    def add(self, count):
        """count more bytes done; writes the file when the last write is `every` seconds old."""
        with self.lock:
            self.done += count
            now = self.clock()
            if self.written_at is None or now - self.written_at >= self.every:
                self._write(now)

    def consumer(self, data):
        """A savestream consumer: counts the bytes it is given."""
        self.add(len(data))

    def counted(self, stream):
        """stream (iterable, with a len()) as a stream whose pieces are counted as they are taken."""
        return _Counted(stream, self)

    def figures(self):
        """The phase's bytes, seconds and rate so far."""
        with self.lock:
            seconds = self.clock() - self.started if self.started is not None else 0.0
            return dict(bytes=self.done, seconds=round(seconds, 3),
                        bytes_per_s=int(self.done / seconds) if seconds > 0 else None)

    def state(self, now):
        """The object the file holds, at monotonic time now."""
        self.samples.append((now, self.done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.pop(0)
        since, done_then = self.samples[0]
        rate = (self.done - done_then) / (now - since) if now > since else None
        eta = None
        if self.total is not None and rate:
            eta = max(0, int(round((self.total - self.done) / rate)))
        wall = self.wall()
        return dict(phase=self.phase, done_bytes=self.done, total_bytes=self.total, total_estimated=self.estimated,
                    rate_bytes_per_s=int(rate) if rate is not None else None, eta_seconds=eta,
                    started=round(wall - (now - self.started), 3), updated=round(wall, 3))

    def _write(self, now):
        self.written_at = now
        state = self.state(now)
        if self.path is None:
            return
        temp = '%s.%d.tmp' % (self.path, os.getpid())
        try:
            with open(temp, 'w') as handle:
                json.dump(state, handle, sort_keys=True)
            os.replace(temp, self.path)
        except (OSError, ValueError):
            self.path = None
            _remove(temp)

    def close(self):
        """Remove the file: the stream is over."""
        with self.lock:
            if self.path is not None:
                _remove(self.path)
            self.path = None


class _Counted(object):
    def __init__(self, stream, progress):
        self.stream = stream
        self.progress = progress

    def __len__(self):
        return len(self.stream)

    def __iter__(self):
        for piece in self.stream:
            self.progress.add(len(piece))
            yield piece


def _remove(path):
    try:
        os.unlink(path)
    except OSError:
        pass
