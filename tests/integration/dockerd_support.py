"""A dockerd of a test's own, for a test that kills the daemon under a module, with an image copied onto it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import docker

from tarball_support import ensure_image
from testbed.processes import process_alive, remove_cgroup, spawn, stop_process, sweep_processes, unmount_under, wait_for


def answers(docker_host):
    try:
        with contextlib.closing(docker.APIClient(base_url=docker_host, version='1.41', timeout=5)) as api:
            return api.ping()
    except Exception:  # pylint: disable=broad-exception-caught
        return False


@contextlib.contextmanager
def throwaway_dockerd(name, image=None, from_host=None, extra_args=()):
    """A dockerd of our own (own netns, socket, data-root, exec-root, cgroup), for a test that kills it; image, when
    given, is made sure of on the engine from_host and copied onto it (docker save | docker load); extra_args: more
    dockerd options (e.g. --add-runtime)."""
    root = '/var/tmp/%s' % name
    netns = 'kr-%s' % name[-12:]
    os.makedirs(root)
    subprocess.run(['ip', 'netns', 'add', netns], check=True)
    subprocess.run(['ip', '-n', netns, 'link', 'set', 'lo', 'up'], check=True)
    socket_path = os.path.join(root, 'docker.sock')
    argv = ['nsenter', '--net=/var/run/netns/' + netns, '/usr/sbin/dockerd', '--data-root', os.path.join(root, 'data'),
            '--exec-root', os.path.join(root, 'exec'), '--pidfile', os.path.join(root, 'docker.pid'),
            '-H', 'unix://' + socket_path, '--cgroup-parent', '/' + netns, '--shutdown-timeout', '2'] + list(extra_args)
    daemon = {'entry': None, 'docker_host': 'unix://' + socket_path}

    def kill():
        os.kill(daemon['entry']['pid'], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while process_alive(daemon['entry']) and time.monotonic() < deadline:
            time.sleep(0.05)

    daemon['kill'] = kill
    try:
        daemon['entry'] = spawn('dockerd', name, argv, os.path.join(root, 'dockerd.log'))
        wait_for('throwaway dockerd', lambda: answers(daemon['docker_host']), 90, daemon['entry'])
        if image:
            ensure_image(from_host, image)
            subprocess.run('docker -H %s save %s | docker -H %s load -q' % (from_host, image, daemon['docker_host']),
                           shell=True, check=True, capture_output=True)
        yield daemon
    finally:
        if daemon['entry']:
            stop_process(daemon['entry'], timeout=30)
        sweep_processes(root)
        remove_cgroup(netns)
        unmount_under(root)
        subprocess.run(['ip', 'netns', 'del', netns], check=False)
        subprocess.run(['rm', '-rf', root], check=False)
