"""container_files: archives in and out of a container, without a daemon (a fake get_archive)."""

from __future__ import annotations

import io
import tarfile

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.container_files import (
    CopyRequest, file_archive, parse_mode, read_file, read_text,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure


class FakeAPI(object):
    def __init__(self, archive, chunk=7):
        self.archive, self.chunk, self.read = archive, chunk, 0

    def get_archive(self, _container, _path, chunk_size=None):
        def stream():
            for start in range(0, len(self.archive), self.chunk):
                self.read += self.chunk
                yield self.archive[start:start + self.chunk]
        return stream(), {}


class FakeClient(object):
    def __init__(self, archive, chunk=7):
        self.api = FakeAPI(archive, chunk)


def one_file(data, mode=0o640, uid=5, gid=6):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as archive:
        info = tarfile.TarInfo('f')
        info.size, info.mode, info.uid, info.gid = len(data), mode, uid, gid
        archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_small_file_is_read_with_its_owner_and_mode_and_compared():
    current = read_file(FakeClient(one_file(b'hello\n')), 'c', '/f', expected=b'hello\n')
    assert (current.kind, current.uid, current.gid, current.mode, current.data, current.same) == \
        ('file', 5, 6, 0o640, b'hello\n', True)
    assert read_file(FakeClient(one_file(b'hello\n')), 'c', '/f', expected=b'hellO\n').same is False
    assert read_text(FakeClient(one_file(b'hello\n')), 'c', '/f') == 'hello\n'


def test_a_large_file_is_compared_while_streaming_and_not_kept():
    data = b'x' * 200000
    current = read_file(FakeClient(one_file(data), chunk=4096), 'c', '/f', limit=1000, expected=data)
    assert current.same is True and current.data is None and current.size == 200000
    client = FakeClient(one_file(data), chunk=4096)
    assert read_file(client, 'c', '/f', limit=1000, expected=b'y' + data[1:]).same is False
    assert client.api.read < len(data) / 2
    assert read_text(FakeClient(one_file(data)), 'c', '/f', limit=1000) == ''


def test_the_vps_archive_is_owned_by_root():
    archive = tarfile.open(fileobj=io.BytesIO(file_archive([('/etc/x', 0o755, None), ('/etc/x/y', 0o600, 'y\n')])))
    folder, member = archive.getmembers()
    assert folder.isdir() and member.name == 'etc/x/y' and (member.uid, member.gid, member.uname) == (0, 0, 'root')


@pytest.mark.parametrize('given, mode', [('0644', 0o644), ('644', 0o644), ('4755', 0o4755), (0o600, 0o600), (None, None)])
def test_modes(given, mode):
    assert parse_mode(given) == mode


@pytest.mark.parametrize('given', ['u+x', '0999', True, -1, 0o10000, '0o644'])
def test_bad_modes_fail_in_one_line(given):
    with pytest.raises(Failure) as caught:
        parse_mode(given)
    assert '\n' not in caught.value.msg and 'octal' in caught.value.msg


def params(**changes):
    return dict(dict(name='my-env', dest='/etc/x', content='x', mode=None, owner=None, group=None), **changes)


def test_the_request_checks_everything_before_docker():
    request = CopyRequest(params(dest='/etc//app/../x.conf', mode='0600', owner='app'))
    assert (request.container, request.dest, request.data, request.mode, request.owner) == \
        ('kohakuriver-env-my-env', '/etc/x.conf', b'x', 0o600, 'app')
    for bad in (params(dest='etc/x'), params(dest='/etc/'), params(dest='/'), params(name='Bad Name'),
                params(owner='a:b'), params(group='')):
        with pytest.raises(Failure) as caught:
            CopyRequest(bad)
        assert '\n' not in caught.value.msg
