"""Times: Docker's times read with nanoseconds and zones, UTC strings written, the Docker host's clock followed."""

from __future__ import annotations

import re

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import times
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure


@pytest.mark.parametrize('text, expected', [
    ('2023-11-14T22:13:20Z', 1700000000.0),
    ('2023-11-14T22:13:20.123456789Z', 1700000000.123456789),
    ('2023-11-15T00:13:20.5+02:00', 1700000000.5),
    ('2023-11-14T21:13:20-01:00', 1700000000.0),
])
def test_docker_times_are_read_with_nanoseconds_and_zones(text, expected):
    assert times.parse_docker_time(text) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize('text', ['yesterday', '', None, '2023-11-14 22:13:20Z', '2023-11-14T22:13:20'])
def test_an_unreadable_docker_time_is_a_failure(text):
    with pytest.raises(Failure, match='Cannot read the Docker time'):
        times.parse_docker_time(text)


def test_a_never_finished_container_reads_as_before_the_epoch():
    assert times.parse_docker_time('0001-01-01T00:00:00Z') < 0


def test_iso_seconds_is_utc_to_the_second():
    assert times.iso_seconds(1700000000) == '2023-11-14T22:13:20Z'
    assert times.iso_seconds(1700000000.999) == '2023-11-14T22:13:20Z'


def test_iso_milliseconds_keeps_the_milliseconds():
    assert times.iso_milliseconds(1700000000.25) == '2023-11-14T22:13:20.250Z'
    assert times.iso_milliseconds(1700000000) == '2023-11-14T22:13:20.000Z'


def test_iso_now_is_an_iso_second():
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$', times.iso_now())


@pytest.mark.parametrize('value, expected', [
    (1700000000, '2023-11-14T22:13:20Z'),
    ('2023-11-14T22:13:20.123456789Z', '2023-11-14T22:13:20Z'),
    ('2023-11-14T22:13:20+02:00', '2023-11-14T22:13:20Z'),
    (None, None),
    ('short', 'short'),
])
def test_iso_time_reads_docker_strings_and_unix_seconds(value, expected):
    assert times.iso_time(value) == expected


class Client(object):
    def __init__(self, system_time):
        self.system_time = system_time

    def info(self):
        return {'Name': 'host', 'SystemTime': self.system_time} if self.system_time else {'Name': 'host'}


def test_the_daemon_clock_follows_the_daemons_time(monkeypatch):
    now = [1700000000.0]
    monkeypatch.setattr(times.time, 'time', lambda: now[0])
    clock = times.DaemonClock(Client('2023-11-14T22:13:30Z'))
    assert clock.info['Name'] == 'host'
    assert clock.now() == pytest.approx(1700000010.0)
    now[0] += 5
    assert clock.now() == pytest.approx(1700000015.0)


def test_a_daemon_without_system_time_counts_as_the_local_clock():
    clock = times.DaemonClock(Client(None))
    assert clock.offset == 0.0
