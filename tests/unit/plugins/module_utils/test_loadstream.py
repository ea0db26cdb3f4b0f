"""The load streams: the full stream passes the tarball through with only the tags stripped, the thin stream carries
only the layers asked for; every check, and nothing complete when a check fails."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import threading

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_archive import ImageArchive
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import archive_image_ids
from ansible_collections.kohakuriver.docker.plugins.module_utils.loadstream import (
    BackgroundDigest, FullStream, OciThinStream, OciWholeStream, ThinStream, _withhold_last_byte,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.sidecar import FORMAT, Sidecar

# Three layers of sizes that are not block aligned and span several chunks at chunk_size=1024.
LAYERS = [bytes(range(256)) * 40 + b'tail', b'second layer ' * 300, bytes(reversed(range(256))) * 20 + b'top']
HEXES = [hashlib.sha256(layer).hexdigest() for layer in LAYERS]
CONFIG = json.dumps({'rootfs': {'type': 'layers', 'diff_ids': ['sha256:' + h for h in HEXES]},
                     'config': {'Labels': {'a': 'b'}, 'Image': 'registry.example/base:1'}}).encode()
CONFIG_HEX = hashlib.sha256(CONFIG).hexdigest()
IMAGE_ID = 'sha256:' + CONFIG_HEX
V1_IDS = ['%d' % i * 64 for i in range(1, 4)]  # legacy layer folder names


def _add(archive, name, data=None, kind=tarfile.REGTYPE, target=''):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = 1700000000
    info.linkname = target
    if data is None:
        archive.addfile(info)
    else:
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def legacy_members(tags=('kohakuriver/env:base',), images=1, layer_names=None):
    layer_names = layer_names or ['%s/layer.tar' % v1 for v1 in V1_IDS]
    manifest = [{'Config': CONFIG_HEX + '.json', 'RepoTags': list(tags), 'Layers': layer_names}] * images
    members = []
    for v1, layer in zip(V1_IDS, LAYERS):
        members += [(v1, None, tarfile.DIRTYPE), (v1 + '/VERSION', b'1.0', tarfile.REGTYPE),
                    (v1 + '/json', b'{}', tarfile.REGTYPE), (v1 + '/layer.tar', layer, tarfile.REGTYPE)]
    return members + [
        (CONFIG_HEX + '.json', CONFIG, tarfile.REGTYPE),
        ('manifest.json', json.dumps(manifest).encode(), tarfile.REGTYPE),
        ('repositories', json.dumps({'kohakuriver/env': {'base': V1_IDS[-1]}}).encode(), tarfile.REGTYPE),
    ]


def oci_members():
    index = {'schemaVersion': 2, 'manifests': [{'digest': 'sha256:' + '1' * 64, 'annotations': {
        'io.containerd.image.name': 'docker.io/kohakuriver/env:base', 'org.opencontainers.image.ref.name': 'base',
        'keep.me': 'yes'}}]}
    manifest = [{'Config': 'blobs/sha256/' + CONFIG_HEX, 'RepoTags': ['kohakuriver/env:base'],
                 'Layers': ['blobs/sha256/' + h for h in HEXES]}]
    return [('blobs', None, tarfile.DIRTYPE), ('blobs/sha256', None, tarfile.DIRTYPE)] + [
        ('blobs/sha256/' + h, layer, tarfile.REGTYPE) for h, layer in zip(HEXES, LAYERS)] + [
        ('blobs/sha256/' + CONFIG_HEX, CONFIG, tarfile.REGTYPE),
        ('index.json', json.dumps(index).encode(), tarfile.REGTYPE),
        ('manifest.json', json.dumps(manifest).encode(), tarfile.REGTYPE),
        ('oci-layout', b'{"imageLayoutVersion": "1.0.0"}', tarfile.REGTYPE),
        ('repositories', b'{}', tarfile.REGTYPE),
    ]


FORMATS = pytest.mark.parametrize('members', [legacy_members(), oci_members()], ids=['legacy', 'oci'])


def write_archive(path, members):
    with tarfile.open(str(path), 'w', format=tarfile.PAX_FORMAT) as archive:
        for member in members:
            _add(archive, *member)
    return str(path)


def make_sidecar(path):
    """The contract's sidecar fields the streams use, computed independently with tarfile."""
    members = []
    with tarfile.open(path) as archive:
        for info in archive:
            if info.isreg():
                members.append({'name': info.name, 'offset': info.offset_data, 'size': info.size,
                                'sha256': hashlib.sha256(archive.extractfile(info).read()).hexdigest()})
    with open(path, 'rb') as handle:
        data = handle.read()
    return {'format': 'kohakuriver.docker/tarball-v1', 'size': len(data), 'sha256': hashlib.sha256(data).hexdigest(),
            'image_id': IMAGE_ID, 'members': members}


def member(sidecar, suffix):
    return [m for m in sidecar['members'] if m['name'].endswith(suffix)][0]


def streamed(stream):
    data = b''.join(bytes(piece) for piece in stream)
    assert len(data) == len(stream) == stream.bytes_sent  # what the Content-Length announced
    return data


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


def open_archive(path, sidecar=None):
    """The ImageArchive of path, checked against sidecar: a dict of sidecar fields, read as sidecar.py reads one."""
    return ImageArchive(path, None if sidecar is None else Sidecar(dict(sidecar, format=FORMAT)))


def partial_stream(stream):
    """The bytes a stream produced before it raised, and the Failure."""
    out = []
    with pytest.raises(Failure) as failure:
        for piece in stream:
            out.append(bytes(piece))
    return b''.join(out), failure.value


def opening_fails(path, sidecar=None):
    with pytest.raises(Failure) as failure:
        open_archive(path, sidecar)
    assert path in failure.value.msg
    return failure.value.msg


def flip(path, offset):
    with open(path, 'r+b') as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


# ---------------------------------------------------------------- the full stream

@FORMATS
def test_full_stream_carries_every_member_unchanged_but_the_tags(tmp_path, members):
    path = write_archive(tmp_path / 'env-1.tar', members)
    stream = FullStream(open_archive(path, make_sidecar(path)), chunk_size=1024)
    assert not stream.thin and stream.layers_sent == 3 and stream.layers_skipped == 0
    result = read_back(streamed(stream))
    original = dict((name, data) for name, data, _kind in members)
    assert set(result) == set(original) - {'repositories'}
    for name, data in original.items():
        if name not in ('manifest.json', 'index.json', 'repositories'):
            assert result[name] == data, name
    manifest = json.loads(result['manifest.json'])
    assert manifest[0]['RepoTags'] is None
    assert manifest[0]['Layers'] == json.loads(original['manifest.json'])[0]['Layers']
    assert stream.verified and stream.complete
    assert stream.image_id == IMAGE_ID
    assert stream.bytes_read == (tmp_path / 'env-1.tar').stat().st_size


def test_full_stream_passes_headers_and_data_through_byte_for_byte(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    with open(path, 'rb') as handle:
        original = handle.read()
    sent = streamed(FullStream(open_archive(path, sidecar), chunk_size=1024))
    manifest_header = member(sidecar, 'manifest.json')['offset'] - 512
    assert sent[:manifest_header] == original[:manifest_header]  # every layer, config and header as it was


def test_oci_index_keeps_only_annotations_that_do_not_name_the_image(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', oci_members())
    index = json.loads(read_back(streamed(FullStream(open_archive(path))))['index.json'])
    assert index['manifests'][0]['annotations'] == {'keep.me': 'yes'}
    assert index['manifests'][0]['digest'] == 'sha256:' + '1' * 64


def test_without_sidecar_the_same_stream_is_unverified(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    with_sidecar = streamed(FullStream(open_archive(path, make_sidecar(path))))
    stream = FullStream(open_archive(path))
    assert streamed(stream) == with_sidecar
    assert stream.complete and not stream.verified


def test_long_member_names_survive(tmp_path):
    long_name = 'd' * 90 + '/' + 'f' * 90
    members = legacy_members()
    members.insert(0, (long_name, b'long', tarfile.REGTYPE))
    path = write_archive(tmp_path / 'env-1.tar', members)
    assert read_back(streamed(FullStream(open_archive(path, make_sidecar(path)))))[long_name] == b'long'


def test_a_truncated_tarball_with_sidecar_fails_before_any_byte_is_sent(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    with open(path, 'r+b') as handle:
        handle.truncate(sidecar['size'] // 2)
    assert 'truncated' in opening_fails(path, sidecar)


@pytest.mark.parametrize('cut, cause', [
    (lambda layer, last: layer['offset'] + layer['size'] // 2, 'unexpected end of data'),  # inside a layer
    (lambda layer, last: layer['offset'] - 100, 'end-of-archive'),  # inside a header
    (lambda layer, last: last['offset'] + last['size'] + (-last['size'] % 512), 'end-of-archive'),  # no end blocks
])
def test_a_cut_tarball_without_sidecar_fails_before_any_byte_is_sent(tmp_path, cut, cause):
    """docker load accepts a file missing only its end blocks as whole; the walk of the headers does not."""
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    with open(path, 'r+b') as handle:
        handle.truncate(cut(member(sidecar, V1_IDS[1] + '/layer.tar'), sidecar['members'][-1]))
    assert cause in opening_fails(path)


def test_a_damaged_header_fails_naming_its_place(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    header = member(make_sidecar(path), V1_IDS[1] + '/layer.tar')['offset'] - 512
    flip(path, header + 3)  # inside the name: the header checksum no longer matches
    assert 'damaged tar header at byte' in opening_fails(path)


def test_a_changed_layer_fails_naming_it_before_the_last_byte_is_sent(tmp_path):
    """One hash of the whole file, checked before the last byte goes; a second read then names the member."""
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    layer = member(sidecar, V1_IDS[1] + '/layer.tar')
    flip(path, layer['offset'] + 100)
    stream = FullStream(open_archive(path, sidecar), chunk_size=1024)
    sent, failure = partial_stream(stream)
    assert 'the sha256 of member %s does not match its sidecar' % layer['name'] in failure.msg
    assert not stream.complete and cut_inside_a_member(sent)
    assert streamed(FullStream(open_archive(path)))[len(sent):].rstrip(b'\0') == b']'  # all but the last byte


def test_a_whole_file_checksum_mismatch_is_caught_at_the_end_and_the_archive_stays_incomplete(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    sidecar['sha256'] = '0' * 64
    stream = FullStream(open_archive(path, sidecar))
    sent, failure = partial_stream(stream)
    assert 'sha256' in failure.msg and path in failure.msg
    assert not stream.complete
    assert cut_inside_a_member(sent)
    whole = streamed(FullStream(open_archive(path)))
    assert whole.startswith(sent)
    assert whole[len(sent):].rstrip(b'\0') == b']'  # all but the manifest's last byte, its padding, the end blocks


def test_a_sidecar_listing_other_members_fails(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    sidecar['members'].append(dict(sidecar['members'][-1], name='extra'))
    assert 'sidecar lists %d' % len(sidecar['members']) in opening_fails(path, sidecar)
    sidecar['members'] = sidecar['members'][1:]
    assert 'differs from its sidecar' in opening_fails(path, sidecar)


def test_a_sidecar_of_another_image_fails(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = dict(make_sidecar(path), image_id='sha256:' + 'e' * 64)
    assert 'its sidecar says sha256:' + 'e' * 64 in opening_fails(path, sidecar)


def test_a_sidecar_listing_other_layers_than_the_config_fails(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = dict(make_sidecar(path), layers=['sha256:' + HEXES[0], 'sha256:' + 'f' * 64, 'sha256:' + HEXES[2]])
    assert 'its config %s.json lists 3 layers, its sidecar 3 (the first that differs: sha256:%s, the sidecar says ' \
        'sha256:%s)' % (CONFIG_HEX, HEXES[1], 'f' * 64) in opening_fails(path, sidecar)
    assert 'lists 3 layers, its sidecar 2' in opening_fails(path, dict(sidecar, layers=['sha256:' + HEXES[0]] * 2))
    assert open_archive(path, dict(sidecar, layers=['sha256:' + h for h in HEXES])).diff_ids == ['sha256:' + h for h in HEXES]


@pytest.mark.parametrize('members, message', [
    (legacy_members(images=2), 'exactly one image'),
    ([m for m in legacy_members() if m[0] != 'manifest.json'], 'no manifest.json'),
    (legacy_members(layer_names=['%s/layer.tar' % v1 for v1 in V1_IDS[:2]]), 'lists 2 layers, the config 3'),
    (legacy_members(layer_names=['%s/layer.tar' % v1 for v1 in V1_IDS[:2]] + ['gone/layer.tar']),
     'names the layer gone/layer.tar'),
])
def test_archives_that_are_not_one_docker_save_image_fail(tmp_path, members, message):
    path = write_archive(tmp_path / 'env-1.tar', members)
    assert message in opening_fails(path)


def test_a_missing_file_fails_with_its_name(tmp_path):
    assert 'gone-1.tar' in opening_fails(str(tmp_path / 'gone-1.tar'))


# ---------------------------------------------------------------- the thin stream

@FORMATS
def test_thin_stream_carries_only_the_layers_above_the_held_ones_the_config_and_the_manifest(tmp_path, members):
    path = write_archive(tmp_path / 'env-1.tar', members)
    archive = open_archive(path, make_sidecar(path))
    stream = ThinStream(archive, 2, chunk_size=1024)
    data = streamed(stream)
    result = read_back(data)
    manifest = json.loads(result.pop('manifest.json'))
    entry = json.loads(dict((m[0], m[1]) for m in members)['manifest.json'])[0]
    assert manifest == [dict(entry, RepoTags=None)]  # every layer still listed: the daemon holds the absent ones
    assert result == {entry['Layers'][2]: LAYERS[2], entry['Config']: CONFIG}
    assert stream.thin and stream.verified and stream.complete
    assert (stream.layers_sent, stream.layers_skipped) == (1, 2)
    assert stream.bytes_read == len(LAYERS[2])
    assert len(data) < 4 * 1024 + len(LAYERS[2]) + len(CONFIG)  # headers, padding and end blocks besides the data
    assert archive.parent_image == 'registry.example/base:1'


@FORMATS
def test_thin_stream_of_no_held_layer_or_of_all(tmp_path, members):
    path = write_archive(tmp_path / 'env-1.tar', members)
    archive = open_archive(path, make_sidecar(path))
    assert sorted(v for v in read_back(streamed(ThinStream(archive, 0))).values() if v in LAYERS) == sorted(LAYERS)
    assert set(read_back(streamed(ThinStream(archive, 3)))) == {'manifest.json', archive.manifest_entry['Config']}


def test_thin_stream_fails_at_a_changed_layer_it_sends_and_never_sends_its_last_byte(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    flip(path, member(sidecar, V1_IDS[2] + '/layer.tar')['offset'] + 700)
    stream = ThinStream(open_archive(path, sidecar), 2, chunk_size=1024)
    sent, failure = partial_stream(stream)
    assert 'sha256 of member %s/layer.tar does not match its sidecar' % V1_IDS[2] in failure.msg
    assert path in failure.msg and not stream.complete
    assert cut_inside_a_member(sent)
    assert len(sent) == 512 + len(LAYERS[2]) - 1


def test_thin_stream_does_not_read_the_held_layers(tmp_path):
    """A layer the daemon holds is not sent, so not read: the daemon's chain ID vouches for it."""
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    flip(path, member(sidecar, V1_IDS[0] + '/layer.tar')['offset'] + 700)
    sidecar['size'] = (tmp_path / 'env-1.tar').stat().st_size
    stream = ThinStream(open_archive(path, sidecar), 1)
    assert read_back(streamed(stream))[V1_IDS[2] + '/layer.tar'] == LAYERS[2]
    assert stream.bytes_read == len(LAYERS[1]) + len(LAYERS[2])
    with pytest.raises(Failure):  # while the full stream reads it and fails
        streamed(FullStream(open_archive(path, sidecar)))


def test_thin_stream_without_sidecar_checks_oci_blobs_by_their_names(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', oci_members())
    assert not ThinStream(open_archive(path), 1).verified
    flip(path, member(make_sidecar(path), HEXES[2])['offset'] + 10)
    sent, failure = partial_stream(ThinStream(open_archive(path), 1))
    assert 'sha256 of member blobs/sha256/%s does not match its name' % HEXES[2] in failure.msg
    assert cut_inside_a_member(sent)


def test_thin_stream_sends_a_linked_layer_under_the_name_the_manifest_gives(tmp_path):
    """docker save links a layer that repeats an earlier one; the thin archive carries the data itself."""
    linked = V1_IDS[2] + '/layer.tar'
    members = [m for m in legacy_members() if m[0] != linked]
    members.insert(-3, (linked, None, tarfile.SYMTYPE, '../%s/layer.tar' % V1_IDS[0]))
    layers = [LAYERS[0], LAYERS[1], LAYERS[0]]
    config = json.dumps({'rootfs': {'type': 'layers', 'diff_ids': [
        'sha256:' + hashlib.sha256(layer).hexdigest() for layer in layers]}}).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    members = [(config_hex + '.json', config, tarfile.REGTYPE) if m[0] == CONFIG_HEX + '.json' else m for m in members]
    members = [(m[0], m[1].replace(CONFIG_HEX.encode(), config_hex.encode()), m[2]) if m[0] == 'manifest.json' else m
               for m in members]
    path = write_archive(tmp_path / 'env-1.tar', members)
    result = read_back(streamed(ThinStream(open_archive(path, dict(make_sidecar(path), image_id='sha256:' + config_hex)), 2)))
    assert result[linked] == LAYERS[0]


# ---------------------------------------------------------------- pieces

def test_withholding_keeps_exactly_the_last_byte_back_until_the_next_piece():
    produced = []
    big = b'x' * (256 * 1024)

    def pieces():
        for piece in (b'abc', b'', b'd', b'ef', big, b'g'):
            produced.append(piece)
            yield piece

    out = []
    for chunk in _withhold_last_byte(pieces()):
        out.append((bytes(chunk), len(produced)))
    assert b''.join(chunk for chunk, _produced in out) == b'abcdef' + big + b'g'
    assert out[0] == (b'ab', 1)
    assert out[1] == (b'c', 3)
    assert out[2] == (b'de', 4)
    assert out[3] == (b'f', 5) and out[4] == (big[:-1], 5)  # a large piece goes on as it is, its last byte later
    assert out[-1] == (b'g', 6)


def test_background_digest_hashes_every_piece_in_order_and_ends_its_thread():
    pieces = [bytes([index]) * (index * 1000 + 1) for index in range(40)]
    digest = BackgroundDigest(depth=1)
    for piece in pieces:
        digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(b''.join(pieces)).hexdigest()
    assert not any(thread.name == 'load-digest' for thread in threading.enumerate())


def test_a_full_stream_abandoned_midway_leaves_no_thread_behind(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    pieces = iter(FullStream(open_archive(path, make_sidecar(path)), chunk_size=1024))
    next(pieces)
    next(pieces)
    assert any(thread.name == 'load-digest' for thread in threading.enumerate())
    pieces.close()
    assert not any(thread.name == 'load-digest' for thread in threading.enumerate())


def test_an_abandoned_background_digest_ends_its_thread():
    digest = BackgroundDigest()
    digest.update(b'partial')
    digest.close()
    digest.close()
    assert not any(thread.name == 'load-digest' for thread in threading.enumerate())


def test_oci_thin_stream_of_a_legacy_archive_is_an_oci_layout_with_the_manifest_a_whole_load_gives(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    archive = open_archive(path, make_sidecar(path))
    stream = OciThinStream(archive, 2, chunk_size=1024)
    result = read_back(streamed(stream))
    index = json.loads(result.pop('index.json'))
    manifest_id = index['manifests'][0]['digest']
    manifest = result.pop('blobs/sha256/' + manifest_id[len('sha256:'):])
    assert manifest_id == archive_image_ids(archive)[1] == 'sha256:' + hashlib.sha256(manifest).hexdigest()
    assert [layer['digest'] for layer in json.loads(manifest)['layers']] == ['sha256:' + h for h in HEXES]
    assert json.loads(result.pop('oci-layout')) == {'imageLayoutVersion': '1.0.0'}
    assert result == {'blobs/sha256/' + HEXES[2]: LAYERS[2], 'blobs/sha256/' + CONFIG_HEX: CONFIG}
    assert stream.thin and stream.verified and (stream.layers_sent, stream.layers_skipped) == (1, 2)


def test_the_whole_oci_stream_of_a_legacy_archive_sends_every_layer_under_the_predicted_manifest(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    archive = open_archive(path, make_sidecar(path))
    stream = OciWholeStream(archive, chunk_size=1024)
    result = read_back(streamed(stream))
    manifest_id = json.loads(result.pop('index.json'))['manifests'][0]['digest']
    assert manifest_id == archive_image_ids(archive)[1]
    assert set(result) == ({'blobs/sha256/' + h for h in HEXES + [CONFIG_HEX, manifest_id[len('sha256:'):]]}
                           | {'oci-layout'})
    assert not stream.thin and stream.verified and (stream.layers_sent, stream.layers_skipped) == (3, 0)


def test_the_whole_oci_stream_checks_the_whole_file_and_names_a_changed_layer(tmp_path):
    path = write_archive(tmp_path / 'env-1.tar', legacy_members())
    sidecar = make_sidecar(path)
    actual, sidecar['sha256'] = sidecar['sha256'], '0' * 64
    stream = OciWholeStream(open_archive(path, sidecar))
    sent, failure = partial_stream(stream)
    assert 'its sha256 is %s, its sidecar says %s' % (actual, '0' * 64) in failure.msg and not stream.complete
    assert len(sent) < len(stream)

    sidecar['sha256'] = actual
    layer = member(sidecar, V1_IDS[1] + '/layer.tar')
    flip(path, layer['offset'] + 100)
    stream = OciWholeStream(open_archive(path, sidecar), chunk_size=1024)
    sent, failure = partial_stream(stream)
    assert 'the sha256 of member %s does not match its sidecar' % layer['name'] in failure.msg and not stream.complete


def test_oci_thin_stream_of_an_oci_archive_keeps_its_blobs_but_the_held_layers_and_names_no_image(tmp_path):
    manifest_blob = json.dumps({'config': {'digest': IMAGE_ID}}).encode()
    manifest_hex = hashlib.sha256(manifest_blob).hexdigest()
    members = oci_members()
    members.insert(2, ('blobs/sha256/' + manifest_hex, manifest_blob, tarfile.REGTYPE))
    path = write_archive(tmp_path / 'env-1.tar', members)
    archive = open_archive(path, make_sidecar(path))
    result = read_back(streamed(OciThinStream(archive, 1)))
    index = json.loads(result.pop('index.json'))
    assert all('io.containerd.image.name' not in entry.get('annotations', {}) for entry in index['manifests'])
    assert set(result) == {'blobs/sha256/' + h for h in HEXES[1:] + [CONFIG_HEX, manifest_hex]} | {'oci-layout'}
    assert 'sha256:' + manifest_hex in archive_image_ids(archive)
