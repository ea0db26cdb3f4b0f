"""env_transfer: which containers the env connection may use, and the tar streams its files travel in."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.container_files import ChunkReader
from ansible_collections.kohakuriver.docker.plugins.plugin_utils.env_transfer import (
    GO_MODE_DIR, TransferError, container_problem, file_tar, is_folder, remote_path, write_member,
)

HOST = 'unix:///var/run/docker.sock'
NAMES = ["it's a \"file\" with spaces.txt", 'ünïcode-名前.bin', 'x' * 150]


def attrs(status='running', labels=None, paused=False):
    return {'Id': 'abc', 'State': {'Status': status, 'Paused': paused},
            'Config': {'Labels': {'io.kohakuriver.docker.managed': 'true'} if labels is None else labels}}


def problem(found, adopt=False):
    return container_problem(found, 'ds', 'kohakuriver-env-ds', HOST, adopt)


def test_a_running_container_of_ours_is_used_and_every_other_case_says_why_in_one_line():
    assert problem(attrs()) is None
    assert problem(None) == ('Environment ds does not exist on %s (no container kohakuriver-env-ds): create it first '
                             'with kohakuriver.docker.container or the environment role.' % HOST)
    assert 'was not made by kohakuriver.docker' in problem(attrs(labels={'made-by': 'hand'}))
    assert 'kohakuriver_env_adopt: true' in problem(attrs(labels={}))
    assert problem(attrs(labels={}), adopt=True) is None
    assert 'is exited, not running' in problem(attrs('exited'))
    assert 'is paused, not running' in problem(attrs(paused=True))
    assert 'never starts' in problem(attrs('created'))
    # adopting takes a foreign container as it is: a stopped one is still refused
    assert 'is exited' in problem(attrs('exited', labels={}), adopt=True)
    for found in (None, attrs(labels={}), attrs('exited'), attrs(paused=True)):
        assert '\n' not in problem(found)


def test_remote_paths_are_absolute_and_normalised():
    assert remote_path('/root/.ansible/tmp/x/AnsiballZ_ping.py') == '/root/.ansible/tmp/x/AnsiballZ_ping.py'
    assert remote_path('relative/file') == '/relative/file'
    assert remote_path('//a/./b/../c') == '/a/c'
    for bad in ('', 'a\0b', None):
        with pytest.raises(TransferError):
            remote_path(bad)


def test_a_folder_is_told_by_the_daemons_mode_bit():
    assert is_folder({'mode': GO_MODE_DIR | 0o755})
    assert not is_folder({'mode': 0o644})
    assert not is_folder(None)


def tar_of(path, name, uid=0, gid=0, chunk=4096):
    with open(path, 'rb') as source:
        chunks = list(file_tar(source, name, uid, gid, chunk))
    return chunks


@pytest.mark.parametrize('size', [0, 1, 511, 512, 513, 4096 * 3 + 7])
@pytest.mark.parametrize('name', NAMES)
def test_the_tar_stream_holds_the_file_exactly_in_chunks_no_bigger_than_asked(tmp_path, size, name):
    source = tmp_path / 'source'
    content = os.urandom(size)
    source.write_bytes(content)
    os.chmod(source, 0o751)
    chunks = tar_of(source, name, uid=1000, gid=1001)
    assert max(len(chunk) for chunk in chunks[1:-1] or [b'']) <= 4096  # the content is never read whole
    data = b''.join(chunks)
    assert len(data) % 512 == 0
    with tarfile.open(fileobj=io.BytesIO(data), mode='r:') as archive:
        members = archive.getmembers()
        assert [(m.name, m.size, m.mode, m.uid, m.gid, m.isfile()) for m in members] == [(name, size, 0o751, 1000, 1001, True)]
        assert archive.extractfile(members[0]).read() == content


def test_a_file_that_shrinks_while_it_is_sent_is_an_error(tmp_path):
    source = tmp_path / 'source'
    source.write_bytes(b'x' * 10000)
    with open(source, 'rb') as handle:
        stream = file_tar(handle, 'f', 0, 0, 1000)
        next(stream)
        os.truncate(source, 3000)
        with pytest.raises(TransferError, match='got shorter while it was being sent'):
            list(stream)


def test_only_a_regular_file_is_sent():
    with open('/dev/null', 'rb') as handle:
        with pytest.raises(TransferError, match='is not a regular file'):
            list(file_tar(handle, 'null', 0, 0))


def archive_of(*members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.PAX_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def chunked(data, size=1000):
    return ChunkReader(data[index:index + size] for index in range(0, len(data), size))


def test_a_fetched_file_is_written_beside_its_destination_then_renamed_over_it(tmp_path):
    content = os.urandom(300000)
    out = tmp_path / "fetched 'one'.bin"
    out.write_bytes(b'old')
    assert write_member(chunked(archive_of(('one.bin', content))), str(out), 'one.bin in ds', chunk=4096) == len(content)
    assert out.read_bytes() == content
    assert os.listdir(tmp_path) == [out.name]


def test_a_cut_stream_leaves_the_destination_as_it_was_and_no_partial_file(tmp_path):
    data = archive_of(('one.bin', os.urandom(300000)))
    out = tmp_path / 'out.bin'
    out.write_bytes(b'old')
    with pytest.raises((TransferError, tarfile.ReadError)):
        write_member(chunked(data[:150000]), str(out), 'one.bin in ds')
    assert out.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['out.bin']


def test_a_folder_is_not_fetched(tmp_path):
    with pytest.raises(TransferError, match='is not a regular file'):
        write_member(chunked(archive_of(('folder', None))), str(tmp_path / 'out'), 'folder in ds')
    assert os.listdir(tmp_path) == []
