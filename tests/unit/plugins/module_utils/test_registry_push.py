"""registry_push: the daemon's push stream read as Docker writes it, local references removed, the sidecar rewritten."""

from __future__ import annotations

import contextlib
import json
import types

import pytest
from docker.errors import APIError

from ansible_collections.kohakuriver.docker.plugins.module_utils import sidecar as sidecar_format
from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_push import RegistryPush, record
from ansible_collections.kohakuriver.docker.plugins.module_utils.registry_settings import RegistrySettings

DIGEST = 'sha256:' + 'd' * 64
REPOSITORY = '127.0.0.1:5000/kohakuriver/env'


class Api(object):
    """The daemon's push (the lines it streams) and its images of the repository, removed as Docker removes them."""

    def __init__(self, lines=(), images=()):
        self.lines = list(lines)
        self.listed = [dict(image) for image in images]
        self.removed = []
        self.pushed = []

    def push(self, repository, tag, auth_config=None, stream=False, decode=False):
        assert stream and decode
        self.pushed.append((repository, tag, auth_config))
        return iter(self.lines)

    def images(self, name=None):
        assert name == REPOSITORY
        return self.listed

    def remove_image(self, reference, noprune=False):
        assert noprune
        if reference.endswith(':refused'):
            raise APIError('conflict', response=types.SimpleNamespace(status_code=409, url='', reason='conflict'))
        self.removed.append(reference)


def pusher(api, **option):
    settings = RegistrySettings(dict(dict(url='127.0.0.1:5000'), **option))
    return RegistryPush(types.SimpleNamespace(api=api), settings, 'env', 'unix:///docker.sock', contextlib.nullcontext)


def test_the_digest_comes_from_the_aux_line_or_the_status_line():
    aux = [{'status': 'Pushed', 'id': 'abc'}, {'status': '1: digest: %s size: 528' % DIGEST}, {'aux': {'Tag': '1', 'Digest': DIGEST}}]
    assert pusher(Api(aux))._push_tag('1') == DIGEST
    assert pusher(Api(aux[:2]))._push_tag('1') == DIGEST


def test_the_pushed_bytes_of_every_layer_are_counted_once():
    counted = []
    lines = [{'status': 'Pushing', 'id': 'a', 'progressDetail': {'current': 100, 'total': 300}},
             {'status': 'Pushing', 'id': 'b', 'progressDetail': {'current': 50}},
             {'status': 'Pushing', 'id': 'a', 'progressDetail': {'current': 300, 'total': 300}},
             {'status': 'Pushed', 'id': 'a', 'progressDetail': {}}, {'aux': {'Digest': DIGEST}}]
    push = pusher(Api(lines))
    push.progress = types.SimpleNamespace(add=counted.append)
    assert push._push_tag('1') == DIGEST and counted == [100, 50, 200]


def test_credentials_go_to_the_daemon_as_its_auth_config():
    api = Api([{'aux': {'Digest': DIGEST}}])
    pusher(api, username='alice', password='pw')._push_tag('1')
    assert api.pushed == [(REPOSITORY, '1', dict(username='alice', password='pw', serveraddress='127.0.0.1:5000'))]
    pusher(api)._push_tag('1')
    assert api.pushed[-1][2] is None


@pytest.mark.parametrize('lines, said', [
    ([{'status': 'Preparing'}, {'errorDetail': {'message': 'unauthorized:\n authentication required'},
                                'error': 'unauthorized:\n authentication required'}], 'failed: unauthorized: authentication required;'),
    ([{'errorDetail': {'message': 'denied'}}], 'failed: denied;'),
    ([{'status': 'Pushed'}], 'reported no digest'),
])
def test_an_error_line_or_no_digest_is_one_line(lines, said):
    with pytest.raises(Failure) as caught:
        pusher(Api(lines))._push_tag('1')
    assert said in caught.value.msg and '\n' not in caught.value.msg


def test_every_local_reference_of_the_repository_goes_and_a_refusal_is_fine():
    api = Api(images=[{'RepoTags': [REPOSITORY + ':1', REPOSITORY + ':latest', 'kohakuriver/env:base', REPOSITORY + ':refused'],
                       'RepoDigests': [REPOSITORY + '@' + DIGEST, 'other/env@' + DIGEST]}])
    pusher(api).untag_local()
    assert api.removed == [REPOSITORY + ':1', REPOSITORY + ':latest', REPOSITORY + '@' + DIGEST]


def written_tarball(tmp_path, signed):
    folder = str(tmp_path)
    tarball = store.Tarball(folder, 'env-1700000000.tar', 'env', 1700000000)
    raw = store.json_bytes({'format': sidecar_format.FORMAT, 'env': 'env', 'timestamp': 1700000000, 'image_id': DIGEST})
    (tmp_path / 'env-1700000000.tar.json').write_bytes(raw)
    if signed:
        (tmp_path / 'env-1700000000.tar.json.sig').write_bytes(b'signature')
    return tarball, raw


def test_record_rewrites_the_sidecar_with_the_field(tmp_path):
    tarball, _raw = written_tarball(tmp_path, signed=False)
    field = dict(repository=REPOSITORY, tag='1700000000', digest=DIGEST)
    record(tarball, field, None, 0o644)
    assert json.loads((tmp_path / 'env-1700000000.tar.json').read_bytes())['registry'] == field
    assert tarball.sidecar.registry == field and store.read_sidecar(tarball.path).registry == field


def test_a_signed_sidecar_is_not_rewritten_without_the_signing_key(tmp_path):
    tarball, raw = written_tarball(tmp_path, signed=True)
    with pytest.raises(Failure, match='is signed, so recording its registry digest needs signing_key'):
        record(tarball, dict(repository=REPOSITORY, tag='1', digest=DIGEST), None, 0o644)
    assert (tmp_path / 'env-1700000000.tar.json').read_bytes() == raw


def test_a_field_of_the_wrong_shape_is_refused_before_anything_is_written(tmp_path):
    tarball, raw = written_tarball(tmp_path, signed=False)
    with pytest.raises(Failure, match='registry.digest'):
        record(tarball, dict(repository=REPOSITORY, tag='1', digest='latest'), None, 0o644)
    assert (tmp_path / 'env-1700000000.tar.json').read_bytes() == raw
