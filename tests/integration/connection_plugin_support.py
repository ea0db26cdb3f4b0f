"""Helpers of the kohakuriver.docker.env connection tests: inventories of environments, playbook runs read through the
json callback (optionally under GNU time), and a unix socket forwarder that can be cut to lose the daemon mid-task."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import selectors
import socket
import subprocess
import threading
from pathlib import Path

from support.collection import BIN

CONNECTION = 'kohakuriver.docker.env'
_MAX_RSS = re.compile(r'Maximum resident set size \(kbytes\): (\d+)')


def env_inventory(path, hosts, **common):
    """An inventory of environment hosts ({inventory name: vars}) that use the connection plugin."""
    group_vars = dict({'ansible_connection': CONNECTION}, **common)
    Path(path).write_text(json.dumps({'environments': {'hosts': hosts, 'vars': group_vars}}, indent=1))
    return Path(path)


class JsonRun(object):
    """An ansible-playbook run with the json callback: rc, the results of each task per host, the stats, peak RSS."""

    def __init__(self, completed):
        self.rc = completed.returncode
        self.stdout, self.stderr = completed.stdout, completed.stderr
        start = self.stdout.find('{')
        self.data = json.loads(self.stdout[start:]) if start >= 0 else {}
        self.stats = self.data.get('stats', {})
        found = _MAX_RSS.search(self.stderr)
        self.peak_rss_mb = int(found.group(1)) / 1024.0 if found else None

    def results(self, host):
        """{task name: result} of host, in the order of the plays."""
        found = {}
        for play in self.data.get('plays', []):
            for task in play['tasks']:
                if host in task['hosts']:
                    found[task['task']['name']] = task['hosts'][host]
        return found

    def changed(self, host):
        return self.stats.get(host, {}).get('changed')

    def problems(self):
        """'task/host: result' of every result that failed, was unreachable or changed something."""
        return ['%s/%s: %s' % (task['task']['name'], host, json.dumps(result)[:3000])
                for play in self.data.get('plays', []) for task in play['tasks']
                for host, result in task['hosts'].items() if result.get('failed') or result.get('unreachable')
                or result.get('changed')]

    def __repr__(self):
        return 'JsonRun(rc=%s)\n%s\nstats: %s\nstderr: %s' % (self.rc, '\n'.join(self.problems()), self.stats,
                                                              self.stderr[-3000:])


def run_json(playbook, inventory, extra_vars=None, env=None, timed=False, timeout=900):
    """ansible-playbook playbook, its output read with the json callback; timed: under /usr/bin/time -v (peak RSS)."""
    command = [str(BIN / 'ansible-playbook'), '-i', str(inventory), str(playbook)]
    if extra_vars:
        command += ['-e', json.dumps(extra_vars)]
    if timed:
        command = ['/usr/bin/time', '-v'] + command
    environment = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_FORCE_COLOR='0', **(env or {}))
    completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False,
                               stdin=subprocess.DEVNULL, env=environment)
    return JsonRun(completed)


def start_json(playbook, inventory, env=None):
    """The same run started in the background (a Popen), for a test that acts while it runs."""
    command = [str(BIN / 'ansible-playbook'), '-i', str(inventory), str(playbook)]
    environment = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.builtin.json', ANSIBLE_FORCE_COLOR='0', **(env or {}))
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            text=True, env=environment)


def finished(process, timeout=300):
    stdout, stderr = process.communicate(timeout=timeout)
    return JsonRun(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))


def write_playbook(path, plays):
    Path(path).write_text(json.dumps(plays, indent=1))
    return Path(path)


def random_file(path, size, chunk=8 * 1024 * 1024):
    """size bytes of random data at path; returns its sha256."""
    digest = hashlib.sha256()
    with open(path, 'wb') as target:
        left = size
        while left:
            data = os.urandom(min(chunk, left))
            digest.update(data)
            target.write(data)
            left -= len(data)
    return digest.hexdigest()


def sha256_of(path, chunk=8 * 1024 * 1024):
    digest = hashlib.sha256()
    with open(path, 'rb') as source:
        for data in iter(lambda: source.read(chunk), b''):
            digest.update(data)
    return digest.hexdigest()


def docker_cli(docker_host, *args):
    """(rc, stdout) of the docker CLI, a client this collection did not write."""
    done = subprocess.run(['docker', '-H', docker_host] + list(args), capture_output=True, text=True, check=False)
    return done.returncode, done.stdout


class SocketForwarder(object):
    """A unix socket at `path` forwarding every connection byte for byte to the daemon's socket `target`.

    cut() closes the listener (removing its path) and every forwarded connection at once: to a client, the daemon
    went away."""

    def __init__(self, path, target):
        self.path, self.target = str(path), target
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.path)
        self.listener.listen(16)
        self._sockets = []
        self._lock = threading.Lock()
        self._cut = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def docker_host(self):
        return 'unix://' + self.path

    def _accept(self):
        while not self._cut.is_set():
            try:
                accepted = self.listener.accept()[0]
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(self.target)
            with self._lock:
                self._sockets += [accepted, upstream]
            threading.Thread(target=self._pump, args=(accepted, upstream), daemon=True).start()

    def _pump(self, one, other):
        peers = {one: other, other: one}
        with selectors.DefaultSelector() as selector:
            for end in peers:
                selector.register(end, selectors.EVENT_READ)
            while not self._cut.is_set():
                for key, _events in selector.select(0.2):
                    try:
                        data = key.fileobj.recv(65536)
                        if not data:
                            peers[key.fileobj].shutdown(socket.SHUT_WR)
                            selector.unregister(key.fileobj)
                            continue
                        peers[key.fileobj].sendall(data)
                    except OSError:
                        return
                if not selector.get_map():
                    return

    def cut(self):
        self._cut.set()
        with contextlib.suppress(OSError):
            self.listener.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with self._lock:
            for end in self._sockets:
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)
                end.close()
