"""The sha256 recorded beside each cached file, so that a later run can tell the file is the one built."""

import hashlib

from .processes import write_file


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checksum_path(path):
    return path + ".sha256"


def record_checksum(path):
    """Write path's sha256 beside it, so that a later run can tell the cached file is the one built."""
    write_file(checksum_path(path), file_sha256(path) + "\n")


def matches_checksum(path):
    try:
        with open(checksum_path(path), encoding="utf-8") as handle:
            return handle.read().strip() == file_sha256(path)
    except OSError:
        return False
