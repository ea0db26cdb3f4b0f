"""The docker-save format's shared rules, and the one-pass archive indexer, on hand-made archives of both layouts, long names and damage."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import archive_indexer
from ansible_collections.kohakuriver.docker.plugins.module_utils.archive_indexer import ArchiveIndexer, read_member_from
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_archive import (
    CorruptArchive, image_id_of_config_member, link_target, resolve, strip_index_names, strip_manifest_tags,
)


def index_file(path, chunk_size=4 * 1024 * 1024):
    """Index an archive on disk as the tarball module indexes the save stream: (describe() dict, hex sha256, size)."""
    indexer = ArchiveIndexer(path)
    whole = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b''):
            whole.update(chunk)
            indexer.feed(chunk)
    return indexer.finish().describe(read_member_from(path)), whole.hexdigest(), indexer.position


def sha(data):
    return hashlib.sha256(data).hexdigest()


def layer_tar(files):
    """An uncompressed layer: a tar of (name, bytes) files."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def build(entries, tar_format=tarfile.GNU_FORMAT):
    """A tar stream of entries: (name, bytes) regular files, (name, '->', target) symlinks, (name, '/') folders."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tar_format) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry[0])
            info.mtime = 1700000000
            if len(entry) == 3:
                info.type = tarfile.SYMTYPE
                info.linkname = entry[2]
                tar.addfile(info)
            elif entry[1] == '/':
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return out.getvalue()


LAYERS = [layer_tar([('etc/os-release', b'ID=test\n')]), layer_tar([('opt/data.bin', bytes(range(256)) * 40)])]
DIFF_IDS = ['sha256:' + sha(layer) for layer in LAYERS]
REPO_TAGS = ['kohakuriver/my-env:base']


def config_bytes(diff_ids=None):
    return json.dumps({'architecture': 'amd64', 'os': 'linux', 'config': {'Labels': {'x': 'y'}},
                       'rootfs': {'type': 'layers', 'diff_ids': DIFF_IDS if diff_ids is None else diff_ids}}).encode()


def legacy_entries(layers=None, config=None, duplicate=False):
    layers = LAYERS if layers is None else layers
    config = config or config_bytes()
    v1 = ['%064x' % (index + 1) for index in range(len(layers))]
    entries = []
    members = []
    for index, layer in enumerate(layers):
        entries += [(v1[index], '/'), (v1[index] + '/VERSION', b'1.0'), (v1[index] + '/json', b'{}')]
        if duplicate and index == 1:
            entries.append((v1[index] + '/layer.tar', '->', '../%s/layer.tar' % v1[0]))
        else:
            entries.append((v1[index] + '/layer.tar', layer))
        members.append(v1[index] + '/layer.tar')
    config_name = sha(config) + '.json'
    entries.append((config_name, config))
    manifest = [{'Config': config_name, 'RepoTags': REPO_TAGS, 'Layers': members}]
    entries.append(('manifest.json', json.dumps(manifest).encode()))
    entries.append(('repositories', json.dumps({'kohakuriver/my-env': {'base': v1[-1]}}).encode()))
    return sorted(entries, key=lambda entry: entry[0])


def oci_entries(layers=None, config=None, prefix=''):
    layers = LAYERS if layers is None else layers
    config = config or config_bytes()
    blobs = [(prefix + 'blobs/sha256/' + sha(layer), layer) for layer in layers]
    config_name = prefix + 'blobs/sha256/' + sha(config)
    oci_manifest = json.dumps({'schemaVersion': 2, 'config': {'digest': 'sha256:' + sha(config)}}).encode()
    entries = [(prefix + 'blobs', '/'), (prefix + 'blobs/sha256', '/')] + blobs
    entries += [(config_name, config), (prefix + 'blobs/sha256/' + sha(oci_manifest), oci_manifest)]
    entries.append((prefix + 'index.json', json.dumps({'schemaVersion': 2, 'manifests': []}).encode()))
    manifest = [{'Config': config_name, 'RepoTags': REPO_TAGS, 'Layers': [name for name, _data in blobs]}]
    entries.append((prefix + 'manifest.json', json.dumps(manifest).encode()))
    entries.append((prefix + 'oci-layout', b'{"imageLayoutVersion": "1.0.0"}'))
    return entries


def index(stream, chunk_size=None):
    indexer = ArchiveIndexer('test')
    chunk_size = chunk_size or len(stream) or 1
    for start in range(0, len(stream), chunk_size):
        indexer.feed(stream[start:start + chunk_size])
    return indexer.finish()


def describe(indexer, stream):
    return indexer.describe(lambda member: stream[member['offset']:member['offset'] + member['size']])


def assert_members_point_at_their_data(indexer, stream, entries):
    expected = [(entry[0], entry[1]) for entry in entries if len(entry) == 2 and entry[1] != '/']
    assert [member['name'] for member in indexer.members] == [name for name, _data in expected]
    for member, (_name, data) in zip(indexer.members, expected):
        assert stream[member['offset']:member['offset'] + member['size']] == data
        assert member['sha256'] == sha(data)
        assert member['offset'] % 512 == 0


@pytest.mark.parametrize('chunk_size', [1, 7, 511, 512, 513, 4096, None])
def test_legacy_archive_is_indexed_whatever_the_chunk_sizes(chunk_size):
    entries = legacy_entries()
    stream = build(entries)
    indexer = index(stream, chunk_size)
    assert_members_point_at_their_data(indexer, stream, entries)
    assert indexer.position == len(stream)
    described = describe(indexer, stream)
    config = config_bytes()
    assert described['archive_format'] == 'docker-legacy'
    assert described['image_id'] == 'sha256:' + sha(config)
    assert described['config'] == sha(config) + '.json'
    assert described['layers'] == DIFF_IDS
    assert described['layer_members'] == ['%064x/layer.tar' % 1, '%064x/layer.tar' % 2]
    assert described['repo_tags'] == REPO_TAGS


@pytest.mark.parametrize('tar_format', [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_oci_layout_is_recognised_and_layers_are_blobs(tar_format):
    entries = oci_entries()
    stream = build(entries, tar_format)
    indexer = index(stream, 1000)
    assert_members_point_at_their_data(indexer, stream, entries)
    described = describe(indexer, stream)
    assert described['archive_format'] == 'oci'
    assert described['layer_members'] == ['blobs/sha256/' + sha(layer) for layer in LAYERS]
    assert described['layers'] == DIFF_IDS
    assert described['config'] == 'blobs/sha256/' + sha(config_bytes())


@pytest.mark.parametrize('tar_format', [tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_long_member_names_and_link_targets_survive(tar_format):
    prefix = 'x' * 120 + '/' + 'y' * 150 + '/'
    entries = oci_entries(prefix=prefix)
    entries.append((prefix + 'z' * 200 + '-link', '->', 'blobs/' + 'w' * 180))
    stream = build(entries, tar_format)
    indexer = index(stream, 300)
    assert_members_point_at_their_data(indexer, stream, entries)
    assert all(len(member['name']) > 255 for member in indexer.members)
    assert indexer.links == [{'name': prefix + 'z' * 200 + '-link', 'target': prefix + 'blobs/' + 'w' * 180}]


def test_pax_size_record_overrides_the_header_size():
    data = b'0123456789' * 100
    pax_records = b'15 size=%d\n' % len(data)
    pax = tarfile.TarInfo('././@PaxHeader')
    pax.type = tarfile.XHDTYPE
    pax.size = len(pax_records)
    member = tarfile.TarInfo('big-file')
    member.size = 0
    stream = pax.tobuf(tarfile.USTAR_FORMAT) + pax_records + bytes(-len(pax_records) % 512)
    stream += member.tobuf(tarfile.USTAR_FORMAT) + data + bytes(-len(data) % 512) + bytes(1024)
    indexer = index(stream, 100)
    assert indexer.members == [{'name': 'big-file', 'offset': 1536, 'size': 1000, 'sha256': sha(data)}]


def test_a_symlinked_duplicate_layer_resolves_to_the_regular_member():
    layers = [LAYERS[0], LAYERS[0]]
    entries = legacy_entries(layers, config_bytes([DIFF_IDS[0]] * 2), duplicate=True)
    stream = build(entries)
    described = describe(index(stream, 4096), stream)
    assert described['layer_members'] == ['%064x/layer.tar' % 1] * 2
    assert described['links'] == [{'name': '%064x/layer.tar' % 2, 'target': '%064x/layer.tar' % 1}]


def test_index_file_reads_the_same_index_from_disk(tmp_path):
    stream = build(legacy_entries())
    path = tmp_path / 'my-env-1700000000.tar'
    path.write_bytes(stream)
    described, digest, size = index_file(str(path), chunk_size=1000)
    assert (digest, size) == (sha(stream), len(stream))
    assert described == describe(index(stream), stream)


def index_trusting_layers(stream, monkeypatch, chunk_size=333):
    monkeypatch.setattr(archive_indexer, 'TRUSTED_LAYER_MIN_SIZE', 1024)
    indexer = ArchiveIndexer('test', trust_layer_digests=True)
    for start in range(0, len(stream), chunk_size):
        indexer.feed(stream[start:start + chunk_size])
    return indexer.finish()


@pytest.mark.parametrize('entries, unhashed', [
    (legacy_entries(), 2),
    (legacy_entries([LAYERS[1], LAYERS[1]], config_bytes([DIFF_IDS[1]] * 2), duplicate=True), 1),
    (oci_entries(), 0),
], ids=['legacy', 'legacy-linked-duplicate', 'oci'])
def test_trusting_layer_digests_describes_a_sound_archive_as_hashing_does(entries, unhashed, monkeypatch):
    stream = build(entries)
    trusted = index_trusting_layers(stream, monkeypatch)
    assert [member['sha256'] for member in trusted.members].count(None) == unhashed
    assert describe(trusted, stream) == describe(index(stream), stream)


def test_trusting_layer_digests_takes_an_oci_layer_digest_from_its_blob_name(monkeypatch):
    entries = oci_entries()
    name, data = entries[2]
    entries[2] = (name, data[:-600] + b'!' + data[-599:])
    stream = build(entries)
    assert describe(index_trusting_layers(stream, monkeypatch), stream)['members'][0]['sha256'] == name.rsplit('/')[-1]


def test_trusting_layer_digests_takes_a_changed_legacy_layer_on_the_daemons_word(monkeypatch):
    changed = LAYERS[1][:-600] + b'!' + LAYERS[1][-599:]
    stream = build(legacy_entries([LAYERS[0], changed]))
    described = describe(index_trusting_layers(stream, monkeypatch), stream)
    assert [member['sha256'] for member in described['members'] if member['name'].endswith('layer.tar')] == [
        sha(LAYERS[0]), DIFF_IDS[1][len('sha256:'):]]


def test_trusting_layer_digests_refuses_a_large_layer_the_manifest_does_not_list(monkeypatch):
    entries = legacy_entries() + [('%064x/layer.tar' % 9, LAYERS[1])]
    with pytest.raises(CorruptArchive, match='holds %064x/layer.tar, which manifest.json does not list' % 9):
        describe(index_trusting_layers(build(entries), monkeypatch), build(entries))


def test_trusting_layer_digests_refuses_a_diff_id_that_is_no_sha256(monkeypatch):
    entries = legacy_entries(config=config_bytes([DIFF_IDS[0], 'md5:1234']))
    with pytest.raises(CorruptArchive, match="diff ID 'md5:1234', which is no sha256 digest"):
        describe(index_trusting_layers(build(entries), monkeypatch), build(entries))


def corrupt_message(stream):
    with pytest.raises(CorruptArchive) as failure:
        indexer = index(stream, 333)
        describe(indexer, stream)
    assert '\n' not in failure.value.msg
    return failure.value.msg


def test_truncated_inside_a_member_is_refused():
    stream = build(legacy_entries())
    biggest = max(index(stream).members, key=lambda member: member['size'])
    assert 'ends inside ' + biggest['name'] in corrupt_message(stream[:biggest['offset'] + biggest['size'] // 2])


def test_missing_end_of_archive_blocks_is_refused():
    stream = build(legacy_entries()).rstrip(b'\0')
    stream += bytes(-len(stream) % 512)
    assert 'without the end-of-archive blocks' in corrupt_message(stream)


def test_a_single_zero_block_then_more_headers_is_refused():
    stream = build(legacy_entries())
    assert 'single zero block' in corrupt_message(bytes(512) + stream)


def test_a_damaged_header_is_refused():
    stream = bytearray(build(legacy_entries()))
    stream[20] ^= 0xff
    assert 'bad tar header at byte 0' in corrupt_message(bytes(stream))


def test_empty_input_is_refused():
    assert 'empty' in corrupt_message(b'')


def test_an_archive_without_manifest_is_refused():
    entries = [entry for entry in legacy_entries() if entry[0] != 'manifest.json']
    assert 'no manifest.json' in corrupt_message(build(entries))


def test_a_layer_the_manifest_names_but_the_archive_lacks_is_refused():
    entries = [entry for entry in legacy_entries() if entry[0] != '%064x/layer.tar' % 2]
    assert 'does not hold' in corrupt_message(build(entries))


def test_a_legacy_layer_whose_bytes_differ_from_its_diff_id_is_refused():
    changed = LAYERS[1][:-600] + b'!' + LAYERS[1][-599:]
    stream = build(legacy_entries([LAYERS[0], changed]))
    assert 'the config says ' + DIFF_IDS[1] in corrupt_message(stream)


def test_an_oci_blob_whose_bytes_differ_from_its_name_is_refused():
    entries = oci_entries()
    name, data = entries[2]
    entries[2] = (name, data[:-600] + b'!' + data[-599:])
    assert 'has sha256' in corrupt_message(build(entries))


def test_a_config_with_another_layer_count_is_refused():
    stream = build(legacy_entries(config=config_bytes(DIFF_IDS[:1])))
    assert 'lists 2 layers, the config 1' in corrupt_message(stream)


def test_a_manifest_with_two_images_is_refused():
    entries = [(entry[0], b'[{}, {}]') if entry[0] == 'manifest.json' else entry for entry in legacy_entries()]
    assert 'exactly one image' in corrupt_message(build(entries))


def test_manifest_and_index_rewrites():
    data, entry = strip_manifest_tags(b'[{"Config":"c.json","RepoTags":["a:b"],"Layers":["l/layer.tar"]}]')
    assert json.loads(data) == [{'Config': 'c.json', 'RepoTags': None, 'Layers': ['l/layer.tar']}]
    assert entry['Config'] == 'c.json'
    with pytest.raises(CorruptArchive):
        strip_manifest_tags(b'{"not": "a list"}')
    with pytest.raises(CorruptArchive):
        strip_manifest_tags(b'[{"RepoTags": []}]')
    index = json.loads(strip_index_names(b'{"manifests":[{"annotations":{"org.opencontainers.image.ref.name":"x"}}]}'))
    assert index == {'manifests': [{}]}


def test_image_id_of_config_member():
    assert image_id_of_config_member('a' * 64 + '.json') == 'sha256:' + 'a' * 64
    assert image_id_of_config_member('blobs/sha256/' + 'b' * 64) == 'sha256:' + 'b' * 64
    assert image_id_of_config_member('config.json') is None


def test_links_resolve_to_the_file_they_lead_to_and_a_loop_or_a_gap_is_corrupt():
    assert link_target('b/layer.tar', '../a/layer.tar', symbolic=True) == 'a/layer.tar'
    assert link_target('b/layer.tar', './a/layer.tar', symbolic=False) == 'a/layer.tar'
    files, links = {'a/layer.tar': 'A'}, {'b/layer.tar': 'a/layer.tar', 'c/layer.tar': 'b/layer.tar'}
    assert resolve('./c/layer.tar', files, links, 'layer') == 'A'
    with pytest.raises(CorruptArchive, match='names the layer x/layer.tar, which the archive does not hold'):
        resolve('x/layer.tar', files, dict(links, **{'x/layer.tar': 'y/layer.tar', 'y/layer.tar': 'x/layer.tar'}), 'layer')
    with pytest.raises(CorruptArchive, match='manifest.json names no config'):
        resolve(None, files, links, 'config')
