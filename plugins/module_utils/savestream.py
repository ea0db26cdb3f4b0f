# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Streaming an image archive into a file while hashing and indexing it, each step on its own thread.

The bytes pass through a fixed ring of reusable buffers (BLOCKS x BLOCK_SIZE: the memory bound, whatever the image
size). A reader thread fills a free buffer from the source's chunks; the calling thread writes it to the file; then
each consumer (the whole-file sha256, the archive indexer) gets it in turn on its own thread; after the last one the
buffer is free again. So the socket, the disk and the two sha256 passes overlap (hashlib releases the GIL on large
buffers), and every consumer still sees every byte once, in order. An error anywhere stops every step and is raised
in the calling thread, as is a signal's exception.

While writing, WriteBehind asks the kernel to start writing what is already written and to drop it from the page
cache once on disk, so the final fsync waits only for the tail and a large tarball does not evict the Host's cache.
"""

from __future__ import annotations

import os
import queue
import threading

from ansible_collections.kohakuriver.docker.plugins.module_utils.store import write_all

SAVE_CHUNK_SIZE = 4 * 1024 * 1024  # what one read of docker save's HTTP stream asks for; the reader copies it into blocks
BLOCK_SIZE = 1024 * 1024  # several sha256 calls per block keep the GIL released; a block stays in the CPU cache
BLOCKS = 16
FLUSH_EVERY = 64 * 1024 * 1024
_POLL = 0.2
_END = object()


class WriteBehind(object):
    """Start writeback of every FLUSH_EVERY bytes written, and evict them from the page cache once written back.

    posix_fadvise(POSIX_FADV_DONTNEED) starts writing a range's dirty pages and drops its clean ones (Linux). Each
    range is advised twice: when written (starts the writeback) and one step later (drops what reached the disk).
    Durability still comes from the fsync of store.seal(); where fadvise is missing or refused, this does nothing.
    """

    def __init__(self, fd, every=FLUSH_EVERY):
        self.fd = fd
        self.every = every
        self.enabled = hasattr(os, 'posix_fadvise') and every > 0
        self.advised_to = 0
        self.lag_from = 0

    def written(self, position):
        if not self.enabled or position - self.advised_to < self.every:
            return
        try:
            os.posix_fadvise(self.fd, self.lag_from, position - self.lag_from, os.POSIX_FADV_DONTNEED)
        except OSError:
            self.enabled = False
        self.lag_from, self.advised_to = self.advised_to, position


class _Pipeline(object):
    """The shared state of one stream: the free buffers, the stop flag and the first error."""

    def __init__(self, blocks, block_size):
        self.free = queue.Queue()
        self.unallocated = blocks
        self.block_size = block_size
        self.stop = threading.Event()
        self.error = None
        self.lock = threading.Lock()
        self.threads = []

    def fail(self, exc):
        with self.lock:
            if self.error is None:
                self.error = exc
        self.stop.set()

    def take(self, inbox):
        """The next item of inbox; raises the pipeline's first error as soon as any step has failed."""
        while True:
            if self.stop.is_set():
                raise self.error or RuntimeError('the stream was stopped')
            try:
                return inbox.get(timeout=_POLL)
            except queue.Empty:
                continue

    def free_buffer(self):
        """A buffer to fill: a recycled one, or a new one while fewer than `blocks` exist."""
        try:
            return self.free.get_nowait()
        except queue.Empty:
            pass
        with self.lock:
            if self.unallocated:
                self.unallocated -= 1
                return bytearray(self.block_size)
        return self.take(self.free)

    def spawn(self, name, target, *args):
        def guarded():
            try:
                target(*args)
            except BaseException as exc:  # pylint: disable=broad-exception-caught
                self.fail(exc)

        thread = threading.Thread(target=guarded, name=name)
        thread.daemon = True
        thread.start()
        self.threads.append(thread)

    def fill(self, chunks, filled):
        """Reader thread: copy the source's chunks into buffers, putting each full one (and the last) into filled."""
        block, used = None, 0
        for chunk in chunks:
            data = memoryview(chunk)
            while data:
                if block is None:
                    block, used = self.free_buffer(), 0
                count = min(len(block) - used, len(data))
                block[used:used + count] = data[:count]
                used += count
                data = data[count:]
                if used == len(block):
                    filled.put((block, used))
                    block = None
            if self.stop.is_set():
                return
        if block is not None:
            filled.put((block, used))
        filled.put(_END)

    def consume(self, consumer, inbox, forward):
        """Consumer thread: give consumer each buffer's bytes in order, then hand the buffer on."""
        while True:
            item = self.take(inbox)
            if item is not _END:
                block, used = item
                with memoryview(block) as view:
                    consumer(view[:used])
            forward(item)
            if item is _END:
                return

    def recycle(self, item):
        if item is not _END:
            self.free.put(item[0])


def stream_to_file(chunks, fd, path, consumers=(), block_size=BLOCK_SIZE, blocks=BLOCKS, flush_every=FLUSH_EVERY):
    """Write the chunks to fd and give every consumer(bytes view) the same bytes in order; return the bytes written.

    Disk errors become store's Failure (full, quota, I/O); the source's and the consumers' errors are raised as they
    are. Nothing remains running when this returns or raises. The caller fsyncs (store.seal) and removes on failure.
    """
    pipeline = _Pipeline(blocks, block_size)
    filled = queue.Queue()
    inboxes = [queue.Queue() for consumer in consumers]
    forwards = [inbox.put for inbox in inboxes[1:]] + [pipeline.recycle]
    for index, consumer in enumerate(consumers):
        pipeline.spawn('save-consumer-%d' % index, pipeline.consume, consumer, inboxes[index], forwards[index])
    pipeline.spawn('save-reader', pipeline.fill, chunks, filled)
    first = inboxes[0].put if inboxes else pipeline.recycle
    behind = WriteBehind(fd, flush_every)
    written = 0
    try:
        while True:
            item = pipeline.take(filled)
            if item is _END:
                break
            block, used = item
            with memoryview(block) as view:
                write_all(fd, view[:used], path, written)
            written += used
            behind.written(written)
            first(item)
        first(_END)
        for thread in pipeline.threads:
            while thread.is_alive():
                thread.join(_POLL)
                if pipeline.stop.is_set():
                    raise pipeline.error
        if pipeline.error is not None:
            raise pipeline.error
        return written
    except BaseException as exc:
        pipeline.fail(exc)
        raise
