"""The load stream: tags stripped, members re-emitted intact, every check, and nothing complete when a check fails."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.loadstream import (
    LoadStream, _withhold_last_byte, image_id_of_config_member, strip_index_names, strip_manifest_tags,
)

CONFIG = json.dumps({'rootfs': {'type': 'layers', 'diff_ids': []}, 'config': {'Labels': {'a': 'b'}}}).encode()
CONFIG_HEX = hashlib.sha256(CONFIG).hexdigest()
LAYER = bytes(range(256)) * 40 + b'tail'  # 10244 bytes: several chunks at chunk_size=1024, not block aligned
LAYER_HEX = hashlib.sha256(LAYER).hexdigest()


def _add(archive, name, data=None, kind=tarfile.REGTYPE):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = 1700000000
    if data is None:
        archive.addfile(info)
    else:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def legacy_members(tags=('kohakuriver/env:base',), images=1):
    manifest = [{'Config': CONFIG_HEX + '.json', 'RepoTags': list(tags), 'Layers': [LAYER_HEX + '/layer.tar']}] * images
    return [
        (LAYER_HEX, None, tarfile.DIRTYPE),
        (LAYER_HEX + '/VERSION', b'1.0', tarfile.REGTYPE),
        (LAYER_HEX + '/layer.tar', LAYER, tarfile.REGTYPE),
        (CONFIG_HEX + '.json', CONFIG, tarfile.REGTYPE),
        ('manifest.json', json.dumps(manifest).encode(), tarfile.REGTYPE),
        ('repositories', json.dumps({'kohakuriver/env': {'base': LAYER_HEX}}).encode(), tarfile.REGTYPE),
    ]


def oci_members():
    index = {'schemaVersion': 2, 'manifests': [{'digest': 'sha256:' + '1' * 64, 'annotations': {
        'io.containerd.image.name': 'docker.io/kohakuriver/env:base', 'org.opencontainers.image.ref.name': 'base',
        'keep.me': 'yes'}}]}
    manifest = [{'Config': 'blobs/sha256/' + CONFIG_HEX, 'RepoTags': ['kohakuriver/env:base'],
                 'Layers': ['blobs/sha256/' + LAYER_HEX]}]
    return [
        ('blobs', None, tarfile.DIRTYPE),
        ('blobs/sha256', None, tarfile.DIRTYPE),
        ('blobs/sha256/' + CONFIG_HEX, CONFIG, tarfile.REGTYPE),
        ('blobs/sha256/' + LAYER_HEX, LAYER, tarfile.REGTYPE),
        ('index.json', json.dumps(index).encode(), tarfile.REGTYPE),
        ('manifest.json', json.dumps(manifest).encode(), tarfile.REGTYPE),
        ('oci-layout', b'{"imageLayoutVersion": "1.0.0"}', tarfile.REGTYPE),
        ('repositories', b'{}', tarfile.REGTYPE),
    ]


def write_archive(path, members):
    with tarfile.open(str(path), 'w', format=tarfile.PAX_FORMAT) as archive:
        for name, data, kind in members:
            _add(archive, name, data, kind)
    return str(path)


def make_sidecar(path):
    """The contract's sidecar fields the stream uses, computed independently with tarfile."""
    members = []
    with tarfile.open(path) as archive:
        for info in archive:
            if info.isreg():
                members.append({'name': info.name, 'offset': info.offset_data, 'size': info.size,
                                'sha256': hashlib.sha256(archive.extractfile(info).read()).hexdigest()})
    with open(path, 'rb') as handle:
        data = handle.read()
    return {'format': 'kohakuriver.docker/tarball-v1', 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
            'image_id': 'sha256:' + CONFIG_HEX, 'members': members}


def streamed(stream):
    return b''.join(bytes(piece) for piece in stream)


def read_back(data):
    """name -> bytes (None for directories) of a complete tar; raises tarfile errors when it is not complete."""
    found = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:') as archive:
        for info in archive:
            found[info.name] = archive.extractfile(info).read() if info.isreg() else None
    return found


def cut_inside_a_member(data):
    """True when data ends inside a tar header or a member's data: what Go's archive/tar (the daemon) refuses.

    Go accepts an archive that ends at a member boundary (even without its end-of-archive blocks) or inside the
    padding after the last member's data, when the input ends with a clean EOF.
    """
    pos = 0
    while pos < len(data):
        if pos + 512 > len(data):
            return True
        block = data[pos:pos + 512]
        if block == bytes(512):
            return False
        size = tarfile.TarInfo.frombuf(block, 'utf-8', 'surrogateescape').size
        if pos + 512 + size > len(data):
            return True
        pos += 512 + size + (-size % 512)
    return False


def partial_stream(stream):
    """The bytes a stream produced before it raised, and the Failure."""
    out = []
    with pytest.raises(Failure) as failure:
        for piece in stream:
            out.append(bytes(piece))
    return b''.join(out), failure.value


@pytest.mark.parametrize('members', [legacy_members(), oci_members()], ids=['legacy', 'oci'])
def test_stream_carries_every_member_unchanged_but_the_tags(tmp_path, members):
    path = write_archive(tmp_path / 'env-1.tar', members)
    stream = LoadStream(path, make_sidecar(path), chunk_size=1024)
    result = read_back(streamed(stream))
    original = dict((name, data) for name, data, _kind in members)
    assert 'repositories' not in result
    for name, data in original.items():
        if name not in ('manifest.json', 'index.json', 'repositories'):
            assert result[name] == data, name
    manifest = json.loads(result['manifest.json'])
    assert manifest[0]['RepoTags'] is None
    assert manifest[0]['Layers'] == json.loads(original['manifest.json'])[0]['Layers']
    assert stream.verified and stream.complete
    assert stream.image_id == 'sha256:' + CONFIG_HEX
    assert stream.bytes_read == (tmp_path / 'env-1.tar').stat().st_size


def test_oci_index_keeps_only_annotations_that_do_not_name_the_image(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', oci_members())
    index = json.loads(read_back(streamed(LoadStream(path)))['index.json'])
    assert index['manifests'][0]['annotations'] == {'keep.me': 'yes'}
    assert index['manifests'][0]['digest'] == 'sha256:' + '1' * 64


def test_without_sidecar_the_same_stream_is_unverified(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    with_sidecar = streamed(LoadStream(path, make_sidecar(path)))
    stream = LoadStream(path)
    assert streamed(stream) == with_sidecar
    assert stream.complete and not stream.verified


def test_long_member_names_survive_the_fresh_headers(tmp_path):
    long_name = 'd' * 90 + '/' + 'f' * 90
    members = legacy_members()
    members.insert(0, (long_name, b'long', tarfile.REGTYPE))
    path = write_archive(tmp_path / 'env-1.tar', members)
    assert read_back(streamed(LoadStream(path, make_sidecar(path))))[long_name] == b'long'


def test_a_truncated_tarball_with_sidecar_fails_before_any_byte_is_sent(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    with open(path, 'r+b') as handle:
        handle.truncate(sidecar['size'] // 2)
    sent, failure = partial_stream(LoadStream(path, sidecar))
    assert sent == b''
    assert path in failure.msg and 'truncated' in failure.msg


def test_a_tarball_cut_inside_a_member_without_sidecar_fails_and_sends_no_complete_archive(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    layer = [m for m in make_sidecar(path)['members'] if m['name'].endswith('layer.tar')][0]
    with open(path, 'r+b') as handle:
        handle.truncate(layer['offset'] + 5000)
    sent, failure = partial_stream(LoadStream(path, chunk_size=1024))
    assert path in failure.msg
    assert cut_inside_a_member(sent)


def test_a_tarball_missing_only_its_end_blocks_fails_without_sidecar(tmp_path):
    """docker load accepts such a file as whole; only a structural check (or a checksum) catches it."""
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    last = make_sidecar(path)['members'][-1]
    with open(path, 'r+b') as handle:
        handle.truncate(last['offset'] + last['size'] + (-last['size'] % 512))
    sent, failure = partial_stream(LoadStream(path))
    assert 'end-of-archive' in failure.msg
    assert cut_inside_a_member(sent)


def test_a_changed_layer_fails_at_that_member_and_its_last_byte_is_never_sent(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    layer = [m for m in sidecar['members'] if m['name'].endswith('layer.tar')][0]
    with open(path, 'r+b') as handle:
        handle.seek(layer['offset'] + 100)
        handle.write(b'X')
    sent, failure = partial_stream(LoadStream(path, sidecar, chunk_size=1024))
    assert 'layer.tar' in failure.msg and 'sha256' in failure.msg
    assert cut_inside_a_member(sent)
    assert len(sent) == layer['offset'] + layer['size'] - 1


def test_a_whole_file_checksum_mismatch_is_caught_at_the_end_and_the_archive_stays_incomplete(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    sidecar['sha256'] = '0' * 64
    stream = LoadStream(path, sidecar)
    sent, failure = partial_stream(stream)
    assert 'sha256' in failure.msg and path in failure.msg
    assert not stream.complete
    assert cut_inside_a_member(sent)
    whole = streamed(LoadStream(path))
    assert whole.startswith(sent)
    assert whole[len(sent):].rstrip(b'\0') == b']'  # all but the manifest's last byte, its padding, the end blocks


def test_a_sidecar_listing_other_members_fails(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    sidecar['members'].append(dict(sidecar['members'][-1], name='extra'))
    sent, failure = partial_stream(LoadStream(path, sidecar))
    assert 'sidecar lists 6' in failure.msg
    sidecar['members'] = sidecar['members'][1:]
    sent, failure = partial_stream(LoadStream(path, sidecar))
    assert 'differs from its sidecar' in failure.msg


@pytest.mark.parametrize('members, message', [
    (legacy_members(images=2), 'exactly one image'),
    ([m for m in legacy_members() if m[0] != 'manifest.json'], 'no manifest.json'),
])
def test_archives_that_are_not_one_docker_save_image_fail(tmp_path, members, message):
    path = write_archive(tmp_path / 'env-1.tar', members)
    assert message in partial_stream(LoadStream(path))[1].msg


def test_a_missing_file_fails_with_its_name(tmp_path):
    failure = partial_stream(LoadStream(str(tmp_path / 'gone-1.tar')))[1]
    assert 'gone-1.tar' in failure.msg


def test_the_strict_walker_tells_a_cut_member_from_a_cut_at_a_boundary(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    with open(path, 'rb') as handle:
        whole = handle.read()
    layer = [m for m in make_sidecar(path)['members'] if m['name'].endswith('layer.tar')][0]
    assert not cut_inside_a_member(whole)
    assert not cut_inside_a_member(whole[:layer['offset'] - 512])
    assert cut_inside_a_member(whole[:layer['offset'] - 1])
    assert cut_inside_a_member(whole[:layer['offset'] + 10])
    assert not cut_inside_a_member(whole[:layer['offset'] + layer['size'] + 1])  # inside the padding


def test_withholding_keeps_exactly_the_last_byte_back_until_the_next_piece():
    produced = []

    def pieces():
        for piece in (b'abc', b'', b'd', b'ef'):
            produced.append(piece)
            yield piece

    out = []
    for chunk in _withhold_last_byte(pieces()):
        out.append((bytes(chunk), len(produced)))
    assert b''.join(chunk for chunk, _produced in out) == b'abcdef'
    assert out[0] == (b'ab', 1)
    assert out[1] == (b'c', 3)
    assert out[-1] == (b'f', 4)


def test_manifest_and_index_rewrites():
    data, entry = strip_manifest_tags(b'[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l/layer.tar"]}]')
    assert json.loads(data) == [{'Config': 'c.json', 'RepoTags': None, 'Layers': ['l/layer.tar']}]
    assert entry['Config'] == 'c.json'
    with pytest.raises(ValueError):
        strip_manifest_tags(b'{"not": "a list"}')
    with pytest.raises(ValueError):
        strip_manifest_tags(b'[{"RepoTags": []}]')
    index = json.loads(strip_index_names(b'{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"x"}}]}'))
    assert index == {'manifests': [{}]}


def test_image_id_of_config_member():
    assert image_id_of_config_member('a' * 64 + '.json') == 'sha256:' + 'a' * 64
    assert image_id_of_config_member('blobs/sha256/' + 'b' * 64) == 'sha256:' + 'b' * 64
    assert image_id_of_config_member('config.json') is None
