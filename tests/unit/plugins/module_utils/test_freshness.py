"""The freshness decision: what counts as the same content, and the cheap facts that are reasons to package."""

from __future__ import annotations

import json

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import freshness, store
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_config import commit_config, committed_config, runtime_config

ENV = 'my-env'
CONFIG = {'Cmd': ['sleep', 'infinity'], 'Env': ['PATH=/usr/bin'], 'Entrypoint': None, 'WorkingDir': '',
          'Labels': {'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.timestamp': '1700000000'},
          'Image': 'busybox', 'Hostname': 'abc'}
# What the container was created from: busybox as `docker import` makes it.
BASE = {'Cmd': ['sh'], 'Entrypoint': None, 'Env': None, 'Labels': None}
LAYERS = ['sha256:' + 'a' * 64, 'sha256:' + 'b' * 64]
CHANGES = [{'Path': '/root', 'Kind': 0}, {'Path': '/root/.ash_history', 'Kind': 1}]


def test_runtime_config_ignores_our_timestamp_and_what_a_commit_does_not_carry():
    config = runtime_config(CONFIG, ENV)
    assert config['Labels'] == {'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.env': ENV}
    assert 'Image' not in config and 'Hostname' not in config
    assert config['Entrypoint'] is None and config['WorkingDir'] is None
    relabelled = dict(CONFIG, Labels=dict(CONFIG['Labels'], **{'io.kohakuriver.docker.timestamp': '1800000000'}))
    assert runtime_config(relabelled, ENV) == config


def sidecar(**changes):
    """The sidecar of the tarball made from CONTAINER: its runtime_config is the committed image's."""
    image_config = committed_config(commit_config(CONFIG, BASE, ENV, 1700000000), CONFIG)
    data = {'format': store.SIDECAR_FORMAT, 'layers': LAYERS, 'runtime_config': runtime_config(image_config, ENV),
            'source': {'container_id': 'c1'}, 'container_changes': freshness.changes_digest(CHANGES), 'size': 5}
    data.update(changes)
    return data


def test_same_content_needs_equal_layers_and_config():
    image = {'RootFS': {'Layers': LAYERS}, 'Config': committed_config(commit_config(CONFIG, BASE, ENV, 1700000001), CONFIG)}
    assert freshness.same_content(image, sidecar(), ENV)
    assert not freshness.same_content(dict(image, RootFS={'Layers': LAYERS[:1]}), sidecar(), ENV)
    assert not freshness.same_content(dict(image, Config=dict(CONFIG, Env=['A=1'])), sidecar(), ENV)
    assert not freshness.same_content(image, None, ENV)


def test_changes_digest_ignores_order_but_not_kind():
    assert freshness.changes_digest(list(reversed(CHANGES))) == freshness.changes_digest(CHANGES)
    assert freshness.changes_digest([dict(CHANGES[0], Kind=2)] + CHANGES[1:]) != freshness.changes_digest(CHANGES)
    assert freshness.changes_digest(None) == freshness.changes_digest([])


@pytest.fixture
def newest(tmp_path):
    (tmp_path / 'my-env-1700000000.tar').write_bytes(b'12345')
    (tmp_path / 'my-env-1700000000.tar.json').write_text(json.dumps(sidecar()))
    return store.newest_tarball(str(tmp_path), ENV)


CONTAINER = {'Id': 'c1', 'Config': CONFIG}


def changes(listed):
    return lambda: listed


def test_no_reason_when_facts_match_the_newest_sidecar(newest):
    assert freshness.reasons_to_package(False, newest, CONTAINER, changes(CHANGES), ENV, BASE) == []


def test_changes_are_listed_only_when_the_answer_depends_on_them(newest):
    def fail():
        raise AssertionError('listed the changes needlessly')

    assert freshness.reasons_to_package(True, newest, CONTAINER, fail, ENV, BASE) == ['force is set']
    assert freshness.reasons_to_package(False, None, CONTAINER, fail, ENV, BASE) == ['there is no tarball of my-env yet']
    assert len(freshness.reasons_to_package(False, newest, dict(CONTAINER, Id='c2'), fail, ENV, BASE)) == 1


def test_force_and_missing_tarballs_are_reasons(newest, tmp_path):
    assert freshness.reasons_to_package(True, newest, CONTAINER, changes(CHANGES), ENV, BASE) == ['force is set']
    assert freshness.reasons_to_package(False, None, CONTAINER, changes(CHANGES), ENV, BASE) == ['there is no tarball of my-env yet']
    (tmp_path / 'my-env-1700000000.tar.json').unlink()
    unverified = store.newest_tarball(str(tmp_path), ENV)
    assert 'has no sidecar' in freshness.reasons_to_package(False, unverified, CONTAINER, changes(CHANGES), ENV, BASE)[0]


@pytest.mark.parametrize('container, listed, reason', [
    (dict(CONTAINER, Id='c2'), CHANGES, 'is not the one'),
    (dict(CONTAINER, Config=dict(CONFIG, User='nobody')), CHANGES, 'configuration differs'),
    (CONTAINER, CHANGES + [{'Path': '/new', 'Kind': 1}], 'added or deleted'),
])
def test_cheap_facts_that_differ_are_reasons(newest, container, listed, reason):
    reasons = freshness.reasons_to_package(False, newest, container, changes(listed), ENV, BASE)
    assert len(reasons) == 1 and reason in reasons[0]


def test_a_tarball_whose_size_differs_from_its_sidecar_is_a_reason(newest, tmp_path):
    (tmp_path / 'my-env-1700000000.tar').write_bytes(b'1234')
    assert 'does not have the size' in freshness.reasons_to_package(False, newest, CONTAINER, changes(CHANGES), ENV, BASE)[0]


def test_a_tarball_whose_image_kept_the_container_config_is_repackaged(newest, tmp_path):
    # Made before images kept their base's runtime: the sidecar recorded the container's own config.
    (tmp_path / 'my-env-1700000000.tar.json').write_text(json.dumps(sidecar(runtime_config=runtime_config(CONFIG, ENV))))
    old = store.newest_tarball(str(tmp_path), ENV)
    reasons = freshness.reasons_to_package(False, old, CONTAINER, changes(CHANGES), ENV, BASE)
    assert len(reasons) == 1 and 'configuration differs' in reasons[0]


def test_another_base_image_is_a_reason(newest):
    reasons = freshness.reasons_to_package(False, newest, CONTAINER, changes(CHANGES), ENV, dict(BASE, Cmd=['bash']))
    assert len(reasons) == 1 and 'configuration differs' in reasons[0]
