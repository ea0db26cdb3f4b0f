"""state=absent: what the request refuses, and which files go (in check mode, would go), with purge and without."""

from __future__ import annotations

import os
import types

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.tarball_removal import RemovalRequest, remove_tarballs

from .test_images import LABELS, Api

PARAMS = dict(name='my-env', state='absent', tarball_dir='/share', purge=False, tarball=None, keep=1, mode='0666')


@pytest.mark.parametrize('changes, message', [
    (dict(purge=True, tarball='my-env-1700000000.tar'),
     '^purge removes everything of the environment; give it without tarball.$'),
    (dict(name='../x'), 'not a valid environment name'),
    (dict(tarball_dir='share'), 'not an absolute path'),
])
def test_the_request_refuses_in_one_line(changes, message):
    with pytest.raises(Failure, match=message):
        RemovalRequest(dict(PARAMS, **changes))


def test_the_request_ignores_what_only_packaging_reads():
    request = RemovalRequest(dict(PARAMS, tarball_dir='/share/', keep=0))
    assert (request.env, request.folder, request.purge, request.tarball) == ('my-env', '/share', False, None)


@pytest.fixture
def folder(tmp_path):
    for name in ('my-env-1700000000.tar', 'my-env-1700000000.tar.json', 'my-env-1600000000.tar',
                 'other-1700000000.tar', '.my-env.package.lock', 'my-env-1500000000.tar.json'):
        (tmp_path / name).write_bytes(b'x')
    return tmp_path


def request_for(folder, **changes):
    return RemovalRequest(dict(PARAMS, tarball_dir=str(folder), **changes))


def names(folder):
    return sorted(os.listdir(str(folder)))


def test_every_tarball_of_the_environment_goes_with_its_sidecar(folder):
    result = remove_tarballs(request_for(folder))
    assert result['changed'] and sorted(os.path.basename(path) for path in result['removed']) == [
        'my-env-1600000000.tar', 'my-env-1700000000.tar']
    assert result['diff'] == dict(before=dict(tarballs=['my-env-1700000000.tar', 'my-env-1600000000.tar']),
                                  after=dict(tarballs=[]))
    assert names(folder) == ['.my-env.package.lock', 'my-env-1500000000.tar.json', 'other-1700000000.tar']


def test_one_named_tarball_goes_and_a_named_orphan_sidecar_too(folder):
    result = remove_tarballs(request_for(folder, tarball='my-env-1700000000.tar'))
    assert [os.path.basename(path) for path in result['removed']] == ['my-env-1700000000.tar']
    assert 'my-env-1600000000.tar' in names(folder)
    result = remove_tarballs(request_for(folder, tarball='my-env-1500000000.tar'))
    assert result['changed'] and result['removed'] == [] and result['cleaned'] == [str(folder / 'my-env-1500000000.tar.json')]


def test_check_mode_removes_nothing_and_says_what_would_go(folder):
    before = names(folder)
    result = remove_tarballs(request_for(folder), check_mode=True)
    assert result['changed'] and len(result['removed']) == 2 and names(folder) == before


def test_nothing_to_remove_is_no_change(tmp_path):
    assert remove_tarballs(request_for(tmp_path / 'missing'))['changed'] is False
    assert remove_tarballs(request_for(tmp_path, tarball='my-env-1700000000.tar'))['changed'] is False


def test_purge_takes_the_lock_file_and_the_committed_images_too(folder):
    api = Api({'sha256:old': (['kohakuriver/my-env:1600000000'], LABELS), 'sha256:used': ([], LABELS)}, used=['sha256:used'])
    result = remove_tarballs(request_for(folder, purge=True), client=types.SimpleNamespace(api=api))
    assert result['removed_images'] == ['sha256:old'] and result['kept_images'] == ['sha256:used: a container uses it']
    assert result['cleaned'] == [str(folder / '.my-env.package.lock')]
    assert names(folder) == ['my-env-1500000000.tar.json', 'other-1700000000.tar']
