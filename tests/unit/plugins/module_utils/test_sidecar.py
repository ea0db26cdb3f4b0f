"""The sidecar format: every field the code reads is type-checked, and any sidecar, however mangled, gives either a
valid dict or a one-line Failure, in the validator and in the code that reads a validated sidecar."""

from __future__ import annotations

import copy
import json
import os
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.kohakuriver.docker.plugins.module_utils import freshness, sidecar, store
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_archive import ImageArchive
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_config import runtime_config
from .test_image_archive import index_file
from .test_loadstream import legacy_members, write_archive

ENV = 'env'
WHERE = '/share/env-1700000000.tar.json'
CONTAINER = {'Id': 'c' * 64, 'Config': {'Labels': {}}}


def valid_sidecar(path):
    """A sidecar as the tarball module writes it, for the archive at path."""
    described, sha256, size = index_file(path)
    data = dict(described, format=sidecar.FORMAT, env=ENV, timestamp=1700000000, file=os.path.basename(path),
                size=size, sha256=sha256, source={'container': 'kohakuriver-env-env', 'container_id': 'c' * 64, 'host': 'h'},
                engine={'version': '20.10.24', 'api_version': '1.41'}, created='2023-11-14T22:13:20Z',
                image_created='2023-11-14T22:13:19.5Z', runtime_config=runtime_config({}, ENV),
                container_changes='d' * 64)
    return data


@pytest.fixture(scope='module')
def archive_path():
    folder = tempfile.mkdtemp()
    path = write_archive(os.path.join(folder, 'env-1700000000.tar'), legacy_members())
    yield path
    os.unlink(path)
    os.rmdir(folder)


def one_line(failure):
    assert '\n' not in failure.msg and failure.msg.startswith(WHERE + ': ')
    assert failure.msg.endswith('remove the sidecar to treat the tarball as unverified, or package again.')
    return failure.msg


def test_a_sidecar_the_tarball_module_writes_is_valid_and_opens_its_archive(archive_path):
    data = valid_sidecar(archive_path)
    assert sidecar.validate(copy.deepcopy(data), WHERE) == data
    assert sidecar.require_complete(data, WHERE) is data
    assert ImageArchive(archive_path, sidecar.Sidecar(data)).image_id == data['image_id']


@pytest.mark.parametrize('field, value, said', [
    ('size', 'abc', 'size is "abc", not a whole number >= 0'),
    ('size', -1, 'size is -1, not a whole number >= 0'),
    ('size', True, 'size is true, not a whole number >= 0'),
    ('size', 1.5, 'size is 1.5, not a whole number >= 0'),
    ('members', 'x', 'members is "x", not a list'),
    ('members', [1, 2], 'members[0] is 1, not an object'),
    ('members', [{'name': 'a', 'offset': 0, 'size': 1}], 'members[0].sha256 is missing'),
    ('members', [{'name': 'a', 'offset': 'x', 'size': 1, 'sha256': 'a' * 64}], 'members[0].offset is "x", not a whole'),
    ('image_id', 123, 'image_id is 123, not sha256:<64 lowercase hex digits>'),
    ('image_id', 'a' * 64, 'not sha256:<64 lowercase hex digits>'),
    ('sha256', 'sha256:' + 'a' * 64, 'sha256 is "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaa..., not 64 lowercase hex'),
    ('source', 'x', 'source is "x", not an object'),
    ('source', {'container_id': 5}, 'source.container_id is 5, not a string'),
    ('engine', [], 'engine is [], not an object'),
    ('runtime_config', 'x', 'runtime_config is "x", not an object'),
    ('layers', ['sha256:xyz'], 'layers[0] is "sha256:xyz", not sha256:'),
    ('links', [{'name': 'a'}], 'links[0].target is missing'),
    ('file', None, 'file is null, not a string'),
    ('registry', 'x', 'registry is "x", not an object'),
    ('registry', {'repository': 'r', 'tag': '1'}, 'registry.digest is missing'),
    ('registry', {'repository': 'r', 'tag': 1, 'digest': 'sha256:' + 'a' * 64}, 'registry.tag is 1, not a string'),
    ('registry', {'repository': 'r', 'tag': '1', 'digest': 'sha256:x'}, 'registry.digest is "sha256:x", not sha256:'),
    ('format', 'kohakuriver.docker/tarball-v0', 'format is "kohakuriver.docker/tarball-v0", not "kohakuriver.docker/'),
])
def test_a_field_of_the_wrong_type_is_one_line_naming_it(archive_path, field, value, said):
    data = dict(valid_sidecar(archive_path), **{field: value})
    with pytest.raises(Failure) as failure:
        sidecar.validate(data, WHERE)
    assert said in one_line(failure.value)


@pytest.mark.parametrize('raw, said', [
    (b'[]', 'the sidecar is [], not a JSON object'),
    (b'{"format": 1', 'not a JSON sidecar'),
    (b'\xff\xfe', 'not a JSON sidecar'),
    (b'[' * 100000 + b']' * 100000, 'not a JSON sidecar'),
])
def test_a_file_that_is_no_json_object_is_one_line(raw, said):
    with pytest.raises(Failure) as failure:
        sidecar.parse(raw, WHERE)
    assert said in one_line(failure.value)


def test_a_sidecar_lacking_what_the_check_needs_is_refused_by_name():
    with pytest.raises(Failure) as failure:
        sidecar.require_complete(sidecar.validate({'format': sidecar.FORMAT, 'sha256': 'a' * 64}, WHERE), WHERE)
    assert 'size, image_id, layers, members are missing, so it cannot be checked against its tarball' in one_line(failure.value)


def test_read_returns_none_without_sidecar_and_fails_on_a_folder(tmp_path):
    assert sidecar.read(str(tmp_path / 'env-1.tar')) is None
    (tmp_path / 'env-1.tar.json').mkdir()
    with pytest.raises(Failure, match='Cannot read the sidecar .*env-1.tar.json: Is a directory'):
        sidecar.read(str(tmp_path / 'env-1.tar'))


# Property: random sidecars, and valid ones mutated field by field, give a valid dict or a Failure, never another
# exception; and what validates goes through the code that reads sidecars with the same promise.

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70) | st.floats() | st.text(max_size=12)
    | st.sampled_from(['sha256:' + 'a' * 64, 'a' * 64, '', 'manifest.json']),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(['name', 'offset', 'size', 'sha256', 'target', 'container_id', 'version']) | st.text(max_size=6),
        children, max_size=4),
    max_leaves=10)
FIELD_NAMES = [name for name, _check in sidecar.FIELDS] + ['format']


def mutate(data, path, value):
    """Set data at path (keys and list indexes; a missing step adds it) to value; return data."""
    target = data
    for step in path[:-1]:
        if isinstance(target, dict):
            target = target.setdefault(step, {})
        elif isinstance(target, list) and isinstance(step, int) and step < len(target):
            target = target[step]
        else:
            return data
    if isinstance(target, dict):
        target[path[-1]] = value
    elif isinstance(target, list) and isinstance(path[-1], int) and path[-1] < len(target):
        target[path[-1]] = value
    return data


PATHS = st.one_of(
    st.sampled_from(FIELD_NAMES).map(lambda name: [name]),
    st.tuples(st.just('members'), st.integers(0, 8), st.sampled_from(['name', 'offset', 'size', 'sha256'])).map(list),
    st.tuples(st.sampled_from(['source', 'engine']),
              st.sampled_from(['container', 'container_id', 'host', 'version', 'api_version'])).map(list),
    st.tuples(st.sampled_from(['layers', 'layer_members', 'repo_tags', 'links']), st.integers(0, 3)).map(list),
)


def assert_clean(call):
    try:
        return call()
    except Failure as failure:
        assert '\n' not in failure.msg
        return failure


def through_readers(data, archive_path):
    """A validated sidecar in the hands of its readers: the image_sync check, tarball_info and the tarball module."""
    validated = assert_clean(lambda: sidecar.validate(data, WHERE))
    if isinstance(validated, Failure):
        return
    assert_clean(lambda: sidecar.require_complete(validated, WHERE) and ImageArchive(archive_path, validated))
    tarball = store.Tarball(os.path.dirname(archive_path), os.path.basename(archive_path), ENV, 1700000000)
    tarball._sidecar, tarball._sidecar_read = validated, True
    assert_clean(lambda: store.describe_tarball(tarball))
    assert_clean(lambda: freshness.reasons_to_package(False, tarball, CONTAINER, lambda: [], ENV, {'Cmd': ['sh']}))
    assert_clean(lambda: freshness.same_content({'RootFS': {'Layers': []}, 'Config': {}}, validated, ENV))


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(path=PATHS, value=JSON)
def test_a_valid_sidecar_mutated_in_one_field_is_valid_or_a_clean_failure(archive_path, path, value):
    data = mutate(valid_sidecar(archive_path), path, value)
    through_readers(data, archive_path)
    assert_clean(lambda: sidecar.parse(json.dumps(data).encode('utf-8'), WHERE))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=6), JSON, max_size=8), formatted=st.booleans())
def test_a_random_sidecar_is_valid_or_a_clean_failure(archive_path, data, formatted):
    if formatted:
        data['format'] = sidecar.FORMAT
    through_readers(data, archive_path)


@settings(max_examples=200)
@given(raw=st.binary(max_size=64) | JSON.map(lambda value: json.dumps(value).encode('utf-8')))
def test_random_bytes_parse_to_a_valid_sidecar_or_a_clean_failure(raw):
    assert_clean(lambda: sidecar.parse(raw, WHERE))


def test_the_typed_accessors_read_what_the_sidecar_says_and_none_for_what_it_omits():
    full = sidecar.Sidecar({'format': sidecar.FORMAT, 'size': 3, 'sha256': 'a' * 64, 'source': {'container_id': 'c1'},
                            'members': [{'name': 'manifest.json', 'offset': 512, 'size': 3, 'sha256': 'b' * 64}],
                            'runtime_config': {'Env': []}, 'container_changes': 'c' * 64})
    assert (full.size, full.sha256, full.source_container_id, full.runtime_config) == (3, 'a' * 64, 'c1', {'Env': []})
    assert [member.layout for member in full.members] == [('manifest.json', 512, 3)] and full.members[0].sha256 == 'b' * 64
    assert full.container_changes == 'c' * 64
    pushed = dict(repository='127.0.0.1:5000/kohakuriver/env', tag='1700000000', digest='sha256:' + 'd' * 64)
    assert sidecar.Sidecar({'format': sidecar.FORMAT, 'registry': pushed}).registry == pushed
    bare = sidecar.Sidecar({'format': sidecar.FORMAT})
    assert (bare.size, bare.image_id, bare.layers, bare.source_container_id, bare.members) == (None, None, None, None, [])
    assert bare.registry is None
    with pytest.raises(sidecar.Invalid, match=r'members\[0\].offset'):
        sidecar.Sidecar({'format': sidecar.FORMAT, 'members': [{'name': 'x', 'offset': 'one', 'size': 1, 'sha256': 'b' * 64}]})


BUILT_FIELDS = ('format', 'env', 'timestamp', 'file', 'size', 'sha256', 'source', 'engine', 'created', 'image_created',
                'runtime_config', 'container_changes')


def test_a_built_sidecar_is_the_one_the_tarball_module_writes_and_passes_its_own_validation(archive_path):
    written = valid_sidecar(archive_path)
    described = dict((key, value) for key, value in written.items() if key not in BUILT_FIELDS)
    built = sidecar.build(env=ENV, timestamp=written['timestamp'], file=written['file'], size=written['size'],
                          sha256=written['sha256'], source=written['source'], engine=written['engine'],
                          created=written['created'], image_created=written['image_created'],
                          runtime_config=written['runtime_config'], container_changes=written['container_changes'],
                          described=described)
    assert built == written and built['format'] == sidecar.FORMAT
    assert sidecar.validate(copy.deepcopy(built), WHERE) == built
    assert sidecar.require_complete(built, WHERE) is built
    assert sidecar.parse(json.dumps(built).encode('utf-8'), WHERE) == built
    assert ImageArchive(archive_path, built).image_id == built['image_id']
