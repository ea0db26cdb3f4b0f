# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bounded views of a command's output, so a module's memory stays flat whatever the command prints."""

from __future__ import annotations

TAIL_BYTES = 64 * 1024


class Tail(object):
    """The last `limit` bytes of a stream, and how many bytes passed in total."""

    def __init__(self, limit=TAIL_BYTES):
        self.limit = limit
        self.total = 0
        self._data = bytearray()

    def add(self, data):
        self.total += len(data)
        self._data += data
        if len(self._data) > 2 * self.limit:
            del self._data[:-self.limit]

    @property
    def truncated(self):
        return self.total > self.limit

    def text(self):
        return bytes(self._data[-self.limit:]).decode('utf-8', 'replace')


def last_lines(text, count, width=None):
    """The last `count` lines of text that are not blank, stripped; width: keep only the end of longer lines."""
    lines = [line.strip() for line in (text or '').splitlines() if line.strip()]
    return [line[-width:] for line in lines[-count:]] if width else lines[-count:]
