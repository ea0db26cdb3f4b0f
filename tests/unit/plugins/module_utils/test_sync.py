"""The freshness decision, which layers a daemon holds, and the reading of the daemon's load messages: pure logic
over inspect dicts."""

from __future__ import annotations

import hashlib

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.layers import chain_ids, held_chain_ids, held_layer_count
from ansible_collections.kohakuriver.docker.plugins.module_utils.sync import (
    LOAD, TAG, SyncRequest, carries_timestamp, find_candidate, image_timestamp, is_current, refresh_action,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.syncload import loaded_image_id

ID_A = 'sha256:' + 'a' * 64
ID_B = 'sha256:' + 'b' * 64


def image(image_id=ID_A, label=None, tags=('kohakuriver/env:base',)):
    labels = {'io.kohakuriver.docker.timestamp': label} if label is not None else None
    return {'Id': image_id, 'RepoTags': list(tags), 'Config': {'Labels': labels}}


def test_image_timestamp_reads_the_label_only_when_it_is_a_number():
    assert image_timestamp(image(label='1700000000')) == 1700000000
    assert image_timestamp(image(label='soon')) is None
    assert image_timestamp(image()) is None
    assert image_timestamp({'Id': ID_A}) is None


def test_the_timestamp_is_carried_by_label_or_by_a_tag_on_the_same_image():
    assert carries_timestamp(image(label='5'), 'env', 5)
    assert carries_timestamp(image(tags=('kohakuriver/env:base', 'kohakuriver/env:5')), 'env', 5)
    assert not carries_timestamp(image(label='4'), 'env', 5)
    assert not carries_timestamp(image(tags=('kohakuriver/env-2:5',)), 'env', 5)
    assert not carries_timestamp(image(tags=('kohakuriver/env:50',)), 'env', 5)


@pytest.mark.parametrize('base, expected_id, current', [
    (None, None, False),
    (image(label='5'), None, True),
    (image(label='5'), ID_A, True),
    (image(label='5'), ID_B, False),  # same name and timestamp, other content: the sidecar wins
    (image(label='4'), ID_A, False),  # the image is the right one but not labelled: tag it
    (image(label='6'), None, False),  # a local image newer than the newest tarball still follows the folder
    (image(tags=('kohakuriver/env:base', 'kohakuriver/env:5')), None, True),  # KohakuRiver tarball loaded earlier
    (image(ID_B, label='5'), (ID_A, ID_B), True),  # the containerd store names it by its manifest digest
    (image(label='5'), (ID_B,), False),
])
def test_is_current(base, expected_id, current):
    assert is_current(base, 'env', 5, expected_id) is current


def test_refresh_tags_an_image_already_present_and_loads_otherwise():
    assert refresh_action(None) == LOAD
    assert refresh_action(None, ID_A) == LOAD
    assert refresh_action(image(ID_A)) == TAG
    assert refresh_action(image(ID_A), ID_A) == TAG
    assert refresh_action(image(ID_B), ID_A) == LOAD
    assert refresh_action(image(ID_B), (ID_A, ID_B)) == TAG


class Inspecting(object):
    """A daemon that holds the images given and records what was asked."""

    def __init__(self, *held):
        self.held = dict((found['Id'], found) for found in held)
        self.asked = []

    def inspect_image(self, reference):
        self.asked.append(reference)
        return self.held.get(reference)


def test_the_candidate_is_asked_by_each_id_it_may_have_config_digest_first_else_by_tag():
    on_containerd = Inspecting(image(ID_B))
    assert find_candidate(on_containerd, 'env', 5, (ID_A, ID_B))['Id'] == ID_B and on_containerd.asked == [ID_A, ID_B]
    classic = Inspecting(image(ID_A))
    assert find_candidate(classic, 'env', 5, (ID_A, ID_B))['Id'] == ID_A and classic.asked == [ID_A]
    untrusted = Inspecting()
    assert find_candidate(untrusted, 'env', 5, ()) is None and untrusted.asked == ['kohakuriver/env:5']


def test_loaded_image_id_from_the_load_messages():
    events = [
        {'status': 'Loading layer', 'progressDetail': {'current': 1, 'total': 2}, 'id': 'abc'},
        {'stream': 'Loaded image ID: %s\n' % ID_A},
    ]
    assert loaded_image_id(events) == ID_A
    assert loaded_image_id([{'stream': 'Loaded image: kohakuriver/env:base\n'}]) is None


@pytest.mark.parametrize('event', [
    {'errorDetail': {'message': 'unexpected EOF'}, 'error': 'unexpected EOF'},
    {'error': 'unexpected EOF'},
    {'message': 'unexpected EOF'},
])
def test_loaded_image_id_raises_the_daemons_error(event):
    with pytest.raises(ValueError, match='unexpected EOF'):
        loaded_image_id([{'stream': 'Loaded image ID: %s\n' % ID_A}, event])


A, B, C, D = ['sha256:' + letter * 64 for letter in 'abcd']


def test_chain_ids_hash_each_diff_id_onto_the_chain_below():
    ab = 'sha256:' + hashlib.sha256(('%s %s' % (A, B)).encode()).hexdigest()
    abc = 'sha256:' + hashlib.sha256(('%s %s' % (ab, C)).encode()).hexdigest()
    assert chain_ids([A, B, C]) == [A, ab, abc]
    assert chain_ids([]) == []
    assert chain_ids([B, C])[1] != abc  # the same layer on another stack is another chain


def test_a_layer_is_held_only_with_the_whole_stack_beneath_it():
    previous = {'Id': ID_A, 'RootFS': {'Layers': [A, B, C]}}
    held = held_chain_ids([previous, None, {'Id': ID_B}])
    assert held_layer_count([A, B, D], held) == 2  # the update: same base, new top layer
    assert held_layer_count([A, B, C], held) == 3
    assert held_layer_count([B, C], held) == 0  # B and C are held, but on top of A
    assert held_layer_count([D, B], held) == 0
    assert held_layer_count([A, B], set(chain_ids([A, B])[1:])) == 0  # never a layer without the one below


PARAMS = dict(name='my-env', tarball_dir='/mnt/share/tarballs/', state_dir='/var/lib/kr', prune=True, allow_stale=False,
              lock_timeout=60)


def test_a_sync_request_holds_the_validated_parameters():
    request = SyncRequest(PARAMS)
    assert (request.env, request.tarball_dir, request.state_dir) == ('my-env', '/mnt/share/tarballs', '/var/lib/kr')
    assert (request.prune, request.allow_stale, request.lock_timeout) == (True, False, 60)


@pytest.mark.parametrize('change, message', [
    (dict(name='My Env'), "name 'My Env' is not a valid environment name"),
    (dict(tarball_dir='tarballs'), "tarball_dir 'tarballs' is not an absolute path"),
])
def test_a_bad_sync_parameter_is_a_failure_that_says_what_to_fix(change, message):
    with pytest.raises(Failure, match=message):
        SyncRequest(dict(PARAMS, **change))


def test_a_pin_is_validated_with_the_request_before_any_docker_call():
    assert SyncRequest(dict(PARAMS, pin='my-env-1700000000.tar')).pin == 'my-env-1700000000.tar'
    assert SyncRequest(dict(PARAMS, pin=None)).pin is None
    with pytest.raises(Failure, match='pin other-1700000000.tar is a tarball of environment other, not of my-env'):
        SyncRequest(dict(PARAMS, pin='other-1700000000.tar'))


class FakeDaemon(object):
    """inspect_image over a dict of references (and IDs) to inspect dicts."""

    def __init__(self, images):
        self.images = images

    def inspect_image(self, reference):
        return self.images.get(reference)


def test_a_pinned_survey_chooses_the_kept_tarball_and_tags_a_held_one(tmp_path):
    from ansible_collections.kohakuriver.docker.plugins.module_utils.sync import survey
    for timestamp in (1700000001, 1700000002):
        (tmp_path / ('env-%d.tar' % timestamp)).write_bytes(b'x')
    older = image(ID_A, tags=('kohakuriver/env:1700000001',))
    newer = image(ID_B, label='1700000002', tags=('kohakuriver/env:base', 'kohakuriver/env:1700000002'))
    daemon = FakeDaemon({'kohakuriver/env:base': newer, 'kohakuriver/env:1700000001': older})
    assert survey(daemon, 'env', str(tmp_path)).action == 'none'
    pinned = survey(daemon, 'env', str(tmp_path), pin='1700000001')
    assert (pinned.action, pinned.tarball.file_name, pinned.candidate['Id']) == (TAG, 'env-1700000001.tar', ID_A)
    daemon.images.pop('kohakuriver/env:1700000001')
    assert survey(daemon, 'env', str(tmp_path), pin='env-1700000001.tar').action == LOAD


def test_an_unreachable_folder_with_a_pin_refuses_a_local_image_of_another_version(tmp_path):
    from ansible_collections.kohakuriver.docker.plugins.module_utils.sync import survey
    daemon = FakeDaemon({'kohakuriver/env:base': image(ID_B, label='1700000002')})
    with pytest.raises(Failure, match='is not the pinned version 1700000001 either'):
        survey(daemon, 'env', str(tmp_path / 'gone'), allow_stale=True, pin='1700000001')
    stale = survey(daemon, 'env', str(tmp_path / 'gone'), allow_stale=True, pin='1700000002')
    assert stale.stale and stale.base['Id'] == ID_B
