"""The threaded save stream: bytes and digests as a plain loop gives them, errors raised to the caller, bounded memory."""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import tarfile
import threading
import time

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import archive_indexer, image_archive, savestream
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from .test_image_archive import index_file

DATA = random.Random(6).randbytes(300000) if hasattr(random.Random, 'randbytes') else os.urandom(300000)


def docker_save_archive():
    """A small legacy docker-save archive: one layer, its config, manifest.json."""
    layer = DATA[:70000]
    config = json.dumps({'rootfs': {'type': 'layers', 'diff_ids': ['sha256:' + hashlib.sha256(layer).hexdigest()]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + '.json'
    manifest = json.dumps([{'Config': config_name, 'RepoTags': ['kohakuriver/e:base'], 'Layers': ['%064x/layer.tar' % 1]}])
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode='w', format=tarfile.PAX_FORMAT) as tar:
        for name, data in (('%064x/layer.tar' % 1, layer), (config_name, config), ('manifest.json', manifest.encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def split(data, sizes):
    """data cut into chunks whose sizes cycle through sizes."""
    chunks, start, index = [], 0, 0
    while start < len(data):
        size = sizes[index % len(sizes)]
        chunks.append(data[start:start + size])
        start += size
        index += 1
    return chunks


def no_stream_threads_left():
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not any(thread.name.startswith('save-') for thread in threading.enumerate()):
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def target(tmp_path):
    path = str(tmp_path / '.env-1700000000.tar.1.abcdef012345.partial')
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    yield path, fd
    try:
        os.close(fd)
    except OSError:
        pass


@pytest.mark.parametrize('chunk_sizes, block_size, blocks', [
    ([1, 7, 4093, 65537], 1000, 3),
    ([1000], 1000, 1),
    ([999, 1001], 1000, 2),
    ([300000], 4096, 4),
    ([511, 512, 513], savestream.BLOCK_SIZE, savestream.BLOCKS),
])
def test_file_and_sha256_passes_equal_a_plain_loop_on_odd_chunk_boundaries(target, chunk_sizes, block_size, blocks):
    path, fd = target
    whole, seen = hashlib.sha256(), []
    written = savestream.stream_to_file(iter(split(DATA, chunk_sizes)), fd, path,
                                        (whole.update, lambda view: seen.append(bytes(view))),
                                        block_size=block_size, blocks=blocks, flush_every=4096)
    assert written == len(DATA)
    assert whole.hexdigest() == hashlib.sha256(DATA).hexdigest()
    assert b''.join(seen) == DATA and all(0 < len(piece) <= block_size for piece in seen)
    with open(path, 'rb') as handle:
        assert handle.read() == DATA
    assert no_stream_threads_left()


def test_the_indexer_fed_by_the_stream_matches_an_index_of_the_file(target):
    path, fd = target
    stream = docker_save_archive()
    indexer = archive_indexer.ArchiveIndexer(path)
    savestream.stream_to_file(iter(split(stream, [3, 700, 1])), fd, path, (indexer.feed,), block_size=1536, blocks=2)
    os.close(fd)
    described = indexer.finish().describe(archive_indexer.read_member_from(path))
    from_disk, digest, size = index_file(path, chunk_size=777)
    assert described == from_disk and size == len(stream) and digest == hashlib.sha256(stream).hexdigest()


def test_an_empty_source_writes_nothing_and_calls_no_consumer(target):
    path, fd = target
    calls = []
    assert savestream.stream_to_file(iter([]), fd, path, (calls.append,)) == 0
    assert calls == [] and os.path.getsize(path) == 0


def test_a_source_error_reaches_the_caller_and_stops_every_thread(target):
    path, fd = target

    def source():
        yield b'x' * 5000
        raise OSError('connection reset by peer')

    with pytest.raises(OSError, match='connection reset'):
        savestream.stream_to_file(source(), fd, path, (hashlib.sha256().update,), block_size=1024, blocks=2)
    assert no_stream_threads_left()


def test_a_consumer_error_reaches_the_caller_and_stops_the_reader(target):
    path, fd = target
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield b'y' * 1000

    def refuse(view):
        raise image_archive.CorruptArchive('Corrupt archive stream: bad tar header at byte 0.')

    with pytest.raises(image_archive.CorruptArchive, match='bad tar header'):
        savestream.stream_to_file(endless(), fd, path, (hashlib.sha256().update, refuse), block_size=1000, blocks=2)
    assert no_stream_threads_left()
    assert len(produced) < 50


def test_a_full_disk_is_the_store_failure_with_the_bytes_written(tmp_path):
    if not os.path.exists('/dev/full'):
        pytest.skip('no /dev/full')
    fd = os.open('/dev/full', os.O_WRONLY)
    try:
        with pytest.raises(Failure, match='is full .* after 0 bytes of the image; free space'):
            savestream.stream_to_file(iter([b'z' * 10000]), fd, str(tmp_path / '.e-1.tar.1.abcdef012345.partial'))
    finally:
        os.close(fd)
    assert no_stream_threads_left()


def test_a_slow_consumer_holds_the_reader_to_the_ring_of_buffers(target):
    path, fd = target
    produced, release = [], threading.Event()

    def source():
        for count in range(200):
            produced.append(count)
            yield b'q' * 100

    def slow(view):
        release.wait(10)

    worker = threading.Thread(target=savestream.stream_to_file, args=(source(), fd, path, (slow,)),
                              kwargs=dict(block_size=1000, blocks=3))
    worker.start()
    time.sleep(0.5)
    # 3 buffers of 10 chunks each are in flight, and the reader holds one more chunk it cannot place yet.
    assert len(produced) <= 3 * 10 + 1
    release.set()
    worker.join(10)
    assert len(produced) == 200 and os.path.getsize(path) == 20000


def test_write_behind_advises_each_range_twice_then_gives_up_on_error(monkeypatch):
    calls = []
    monkeypatch.setattr(os, 'posix_fadvise', lambda fd, offset, length, advice: calls.append((offset, length)),
                        raising=False)
    behind = savestream.WriteBehind(7, every=100)
    for position in (50, 100, 150, 230, 330, 350):
        behind.written(position)
    assert calls == [(0, 100), (0, 230), (100, 230)]

    def refuse(*args):
        raise OSError(22, 'Invalid argument')

    monkeypatch.setattr(os, 'posix_fadvise', refuse)
    behind.written(1000)
    assert behind.enabled is False
    behind.written(5000)


def test_write_behind_does_nothing_without_fadvise(monkeypatch):
    monkeypatch.delattr(os, 'posix_fadvise', raising=False)
    behind = savestream.WriteBehind(7, every=100)
    behind.written(1000)
    assert behind.enabled is False
