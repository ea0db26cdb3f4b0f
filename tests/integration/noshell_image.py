"""An image with no shell and no other program: one static x86-64 executable, /pause, plus a few files and links.

/pause with no argument waits for signals forever (the container's main process); with any argument it exits 0 at
once (a command container_exec can run). It is under 200 bytes, written here, so the image holds nothing
that could answer `test -e` or `sh -c`, unlike busybox.
"""

from __future__ import annotations

import contextlib
import io
import platform
import struct
import subprocess
import tarfile

import pytest

# mov rax,[rsp]; cmp rax,1; jg exit; loop: mov eax,34 (pause); syscall; jmp loop; exit: mov eax,60; xor edi,edi; syscall
_CODE = bytes.fromhex('488b0424 4883f801 7f09 b822000000 0f05 ebf7 b83c000000 31ff 0f05')
_BASE = 0x400000


def pause_program():
    """A static ELF64 executable of _CODE: one loadable segment holding the headers and the code."""
    header_size, segment_header_size = 64, 56
    entry = _BASE + header_size + segment_header_size
    header = b'\x7fELF' + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        '<HHIQQQIHHHHHH', 2, 0x3e, 1, entry, header_size, 0, 0, header_size, segment_header_size, 1, 0, 0, 0)
    size = header_size + segment_header_size + len(_CODE)
    segment = struct.pack('<IIQQQQQQ', 1, 5, 0, _BASE, _BASE, size, size, 0x1000)
    return header + segment + _CODE


def rootfs_tar():
    """/pause, /made (a file), /dir/, /link -> made, /dir/up -> ../made, /dangling -> /nowhere."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w') as archive:
        for name, mode, data in (('pause', 0o755, pause_program()), ('made', 0o644, b'made\n')):
            info = tarfile.TarInfo(name)
            info.mode, info.size = mode, len(data)
            archive.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo('dir')
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        archive.addfile(folder)
        for name, target in (('link', 'made'), ('dir/up', '../made'), ('dangling', '/nowhere')):
            link = tarfile.TarInfo(name)
            link.type, link.linkname = tarfile.SYMTYPE, target
            archive.addfile(link)
    return buffer.getvalue()


@contextlib.contextmanager
def noshell_container(docker_host, container, image):
    """`docker import` of rootfs_tar() as image and `docker run -d` of /pause as container (plain docker CLI), both
    removed afterwards."""
    if platform.machine() not in ('x86_64', 'AMD64'):
        pytest.skip('the shell-less test program is x86-64 machine code')
    docker = ['docker', '-H', docker_host]
    subprocess.run(docker + ['import', '-', image], input=rootfs_tar(), check=True, capture_output=True)
    try:
        subprocess.run(docker + ['run', '-d', '--name', container, image, '/pause'], check=True, capture_output=True)
        try:
            yield
        finally:
            subprocess.run(docker + ['rm', '-f', container], check=False, capture_output=True)
    finally:
        subprocess.run(docker + ['rmi', image], check=False, capture_output=True)
