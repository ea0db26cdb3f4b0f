# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Times: Docker's RFC 3339 times read, UTC ISO-8601 strings written, and the Docker host's clock.

Standard library only. The clock takes a connected client from its caller and imports nothing of the SDK.
"""

from __future__ import annotations

import datetime
import re
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

_DOCKER_TIME = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$')
_ISO_SECONDS = '%Y-%m-%dT%H:%M:%SZ'


def parse_docker_time(text):
    """Seconds since the epoch of a Docker RFC 3339 time with nanoseconds ('2026-11-28T15:00:00.123456789Z')."""
    match = _DOCKER_TIME.match(text or '')
    if not match:
        raise Failure('Cannot read the Docker time %r.' % (text,))
    zone = match.group(3)
    moment = datetime.datetime.strptime(match.group(1), '%Y-%m-%dT%H:%M:%S')
    offset = 0 if zone == 'Z' else (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == '+' else -1)
    whole = (moment - datetime.datetime(1970, 1, 1)).total_seconds() - offset
    return whole + float('0' + (match.group(2) or '.0'))


def iso_seconds(seconds):
    """ISO-8601 UTC of a Unix time, to the second: 2023-11-14T22:13:20Z."""
    return datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc).strftime(_ISO_SECONDS)


def iso_milliseconds(seconds):
    """ISO-8601 UTC of a Unix time, to the millisecond: 2023-11-14T22:13:20.250Z."""
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds)) + ('.%03dZ' % int((seconds % 1) * 1000))


def iso_now():
    """ISO-8601 UTC of now, to the second."""
    return iso_seconds(time.time())


def iso_time(value):
    """Docker's times (RFC 3339 with nanoseconds, or unix seconds) as 'YYYY-MM-DDTHH:MM:SSZ'; anything else as it is."""
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).strftime(_ISO_SECONDS)
    if isinstance(value, str) and len(value) >= 19:
        return value[:19] + 'Z'
    return value


class DaemonClock(object):
    """The Docker host's clock (it stamps an image's Created), read once and followed with the local clock."""

    def __init__(self, client):
        before = time.time()
        self.info = client.info()
        system_time = self.info.get('SystemTime')
        after = time.time()
        self.offset = parse_docker_time(system_time) - (before + after) / 2 if system_time else 0.0

    def now(self):
        return time.time() + self.offset
