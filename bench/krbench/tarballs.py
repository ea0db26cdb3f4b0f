"""Tarballs of the synthetic environment for the sync scenarios, made by the tarball module."""

from __future__ import annotations

from krbench import measure


def make(host, images, tarball_dir, keep=2):
    """A new tarball of the environment container in tarball_dir; returns (path, sidecar dict)."""
    sample = measure.run_module('tarball', dict(name=images.env, tarball_dir=tarball_dir, keep=keep, force=True,
                                                docker_host=host.docker_host, timeout=1800))
    path = sample.result['tarball']['path']
    from ansible_collections.kohakuriver.docker.plugins.module_utils import store  # pylint: disable=import-outside-toplevel,import-error
    return path, store.read_sidecar(path)
