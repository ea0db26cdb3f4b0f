"""mount_point: the runner role's mount table lookup."""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.filter.mount_point import mount_point


def test_mount_point_is_the_longest_mount_holding_the_path_as_the_template_found():
    mounts = ['/', '/mnt', '/mnt/cluster-share/', '/mnt/cluster-shared', '/var']
    assert mount_point('/mnt/cluster-share/kohakuriver-containers', mounts) == '/mnt/cluster-share/'
    assert mount_point('/mnt/cluster-share', mounts) == '/mnt/cluster-share/'
    assert mount_point('/mnt/other/', mounts) == '/mnt'
    assert mount_point('/srv/x', mounts) == '/'
    assert mount_point('/srv/x', []) == '/'
