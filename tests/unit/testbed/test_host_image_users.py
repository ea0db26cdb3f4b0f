"""Sessions running at once share the test images pulled onto the Host; the last to leave untags them
(tests/testbed/host_image_users.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from testbed import host_image_users
from testbed.config import Config


class FakeHost:
    def __init__(self, present=()):
        self.present = set(present)
        self.pulled = []
        self.deleted = []

    def has_image(self, name):
        return name in self.present

    def pull(self, name):
        self.pulled.append(name)
        self.present.add(name)

    def call(self, method, path, ok=()):
        assert method == 'DELETE' and 409 in ok
        self.deleted.append(path)
        return 200, {}


def test_one_session_untags_what_it_pulled_and_only_that(tmp_path):
    config = Config({'KR_TESTBED_DIR': str(tmp_path)})
    host = FakeHost(present={'own:1'})
    host_image_users.join(host, ['own:1', 'reg/busybox:latest'], config)
    assert host.pulled == ['reg/busybox:latest']
    host_image_users.leave(host, config)
    assert host.deleted == ['/images/reg/busybox:latest']


def test_a_session_still_running_keeps_the_images_until_it_leaves(tmp_path):
    config = Config({'KR_TESTBED_DIR': str(tmp_path)})
    other = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        host = FakeHost()
        host_image_users.join(host, ['reg/busybox:latest'], config)
        path = os.path.join(config.path('host-images'), 'users.json')
        with open(path, encoding='utf-8') as handle:
            record = handle.read()
        with open(path, 'w', encoding='utf-8') as handle:
            handle.write(record.replace('"users": [', '"users": [%d, ' % other.pid))
        host_image_users.leave(host, config)
        assert host.deleted == []
    finally:
        other.kill()
        other.wait()
    host_image_users.join(host, ['reg/busybox:latest'], config)
    host_image_users.leave(host, config)
    assert host.deleted == ['/images/reg/busybox:latest']
