"""Which engine and image store each runner of the test bed runs (tests/testbed/config.py Node), and the image ID a
daemon gives a cached image archive on either store (tests/testbed/images.py engine_image_id)."""

from __future__ import annotations

import io
import json
import tarfile

from testbed.config import Config, Node
from testbed.images import engine_image_id

# Measured on the test bed: Docker 26.1.5 with the containerd store named the busybox archive's image by this digest.
BUSYBOX_CONFIG_HEX = 'cc055b93c092ae8a806a023b5d945d7ddb5d59bef467441d46248c7ebafab699'
BUSYBOX_ON_CONTAINERD = 'sha256:8e07b54a8beae0bd4a99fe0f5214679b75a615cf147e242591616fb7a1493dae'


def test_every_third_runner_is_docker_26_with_the_containerd_image_store():
    config = Config({})
    kinds = [(Node(config, index).generation, Node(config, index).image_store) for index in range(1, 7)]
    assert kinds == [('20.10', 'graphdriver'), ('26', 'graphdriver'), ('26', 'containerd')] * 2
    assert config.runners == 3 and Config({'KR_TESTBED_RUNNERS': '2'}).runners == 2


def _add(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def test_the_id_of_a_cached_archive_on_either_store(tmp_path):
    """A stand-in archive with the measured busybox's config size, digest and layer: the config is padded JSON whose
    digest is not the real one, so only the containerd-store ID (fixed by digests and sizes) is compared."""
    path = str(tmp_path / 'image.tar')
    layer_digest = 'sha256:f461da084664f96cc4a13211068cc3bd1e9e562e84307e863c2ff763644e3e28'
    config = json.dumps({'rootfs': {'diff_ids': [layer_digest]}}).encode()
    config += b' ' * (897 - len(config))
    with tarfile.open(path, 'w') as archive:
        _add(archive, 'v1/layer.tar', b'\0' * 2140160)
        _add(archive, BUSYBOX_CONFIG_HEX + '.json', config)
        _add(archive, 'manifest.json', json.dumps([{'Config': BUSYBOX_CONFIG_HEX + '.json', 'Layers': ['v1/layer.tar']}]).encode())
    assert engine_image_id(path, 'graphdriver') == 'sha256:' + BUSYBOX_CONFIG_HEX
    assert engine_image_id(path, 'containerd') == BUSYBOX_ON_CONTAINERD
