"""image_identity: the IDs a tarball's image has on the classic and the containerd image store."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import (
    digest_of, image_ids, legacy_manifest, matches, oci_index, sidecar_image_ids, uses_containerd_store,
)

# Measured on Docker 26.1.5 with the containerd-snapshotter feature: `docker load` of the test bed's busybox (a
# docker-legacy archive from Docker 20.10, one 2140160-byte layer, an 897-byte config) gave this image ID.
BUSYBOX_CONFIG = 'sha256:cc055b93c092ae8a806a023b5d945d7ddb5d59bef467441d46248c7ebafab699'
BUSYBOX_LAYER = 'sha256:f461da084664f96cc4a13211068cc3bd1e9e562e84307e863c2ff763644e3e28'
BUSYBOX_ON_CONTAINERD = 'sha256:8e07b54a8beae0bd4a99fe0f5214679b75a615cf147e242591616fb7a1493dae'


def hexes(count):
    return ['%x' % (i + 10) * 64 for i in range(count)]


def legacy_sidecar(config_size=897):
    config_hex, layer_hex, other_hex = hexes(3)
    return {'image_id': 'sha256:' + config_hex, 'archive_format': 'docker-legacy', 'config': config_hex + '.json',
            'layers': ['sha256:' + layer_hex, 'sha256:' + other_hex],
            'members': [{'name': 'a/layer.tar', 'size': 1536, 'sha256': layer_hex},
                        {'name': 'b/layer.tar', 'size': 2048, 'sha256': other_hex},
                        {'name': config_hex + '.json', 'size': config_size, 'sha256': config_hex},
                        {'name': 'manifest.json', 'size': 200, 'sha256': '0' * 64}]}


def test_the_manifest_containerd_makes_of_a_legacy_archive_is_rebuilt_byte_for_byte():
    manifest = legacy_manifest(BUSYBOX_CONFIG, 897, [(BUSYBOX_LAYER, 2140160)])
    assert digest_of(manifest) == BUSYBOX_ON_CONTAINERD
    assert image_ids('docker-legacy', BUSYBOX_CONFIG, 897, [(BUSYBOX_LAYER, 2140160)], []) == (BUSYBOX_CONFIG, BUSYBOX_ON_CONTAINERD)


def test_a_legacy_sidecar_gives_the_config_digest_then_the_manifest_digest():
    sidecar = legacy_sidecar()
    config_hex, layer_hex, other_hex = hexes(3)
    expected = digest_of(legacy_manifest(sidecar['image_id'], 897, [('sha256:' + layer_hex, 1536), ('sha256:' + other_hex, 2048)]))
    assert sidecar_image_ids(sidecar) == (sidecar['image_id'], expected)
    assert sidecar_image_ids(legacy_sidecar(898))[1] != expected  # the config's size is part of the manifest


def test_a_sidecar_without_members_or_image_id_gives_what_it_can():
    assert sidecar_image_ids(None) == ()
    assert sidecar_image_ids({'layers': []}) == ()
    assert sidecar_image_ids({'image_id': BUSYBOX_CONFIG, 'archive_format': 'docker-legacy'}) == (BUSYBOX_CONFIG,)
    unsized = dict(legacy_sidecar(), members=legacy_sidecar()['members'][2:])
    assert sidecar_image_ids(unsized) == (unsized['image_id'],)


def test_an_oci_sidecar_offers_its_small_blobs_besides_config_and_layers():
    config_hex, layer_hex, manifest_hex, big_hex = hexes(4)
    sidecar = {'image_id': 'sha256:' + config_hex, 'archive_format': 'oci', 'config': 'blobs/sha256/' + config_hex,
               'layers': ['sha256:' + layer_hex],
               'members': [{'name': 'blobs/sha256/' + name, 'size': size, 'sha256': name}
                           for name, size in ((layer_hex, 4096), (config_hex, 900), (manifest_hex, 400),
                                              (big_hex, 64 * 1024 * 1024))] + [{'name': 'index.json', 'size': 300, 'sha256': '1' * 64}]}
    assert sidecar_image_ids(sidecar) == ('sha256:' + config_hex, 'sha256:' + manifest_hex)


@pytest.mark.parametrize('status, containerd', [
    ([['Backing Filesystem', 'extfs'], ['driver-type', 'io.containerd.snapshotter.v1']], True),
    ([['Backing Filesystem', 'extfs'], ['Supports d_type', 'true']], False),
    (None, False),
    ([['driver-type']], False),
])
def test_the_containerd_store_is_told_by_docker_info(status, containerd):
    assert uses_containerd_store({'DriverStatus': status}) is containerd


def test_matches_one_id_any_of_several_or_any():
    image = {'Id': BUSYBOX_ON_CONTAINERD}
    assert matches(image, None) and matches(image, BUSYBOX_ON_CONTAINERD)
    assert matches(image, (BUSYBOX_CONFIG, BUSYBOX_ON_CONTAINERD)) and not matches(image, (BUSYBOX_CONFIG,))
    assert not matches(image, BUSYBOX_CONFIG) and not matches(None, None) and not matches(image, ())


def test_oci_index_names_one_manifest_and_no_image():
    index = json.loads(oci_index('application/x', 'sha256:' + '2' * 64, 10))
    assert index['manifests'] == [{'mediaType': 'application/x', 'digest': 'sha256:' + '2' * 64, 'size': 10}]
    assert digest_of(b'x') == 'sha256:' + hashlib.sha256(b'x').hexdigest()
