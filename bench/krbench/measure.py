"""One measured run of one command: wall seconds, peak memory (max RSS) and what the command said.

Every contender is a separate process started under GNU time (`/usr/bin/time -v`), which reports the largest
resident set of that process and of every descendant it waited for (the largest single process, not a sum).
Wall time is taken here around the whole process with a monotonic clock.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKTREE_COLLECTIONS = REPO / '.ansible' / 'collections'
GNU_TIME = '/usr/bin/time'
PLAYBOOKS = REPO / 'bench' / 'playbooks'

_MAX_RSS = re.compile(r'Maximum resident set size \(kbytes\): (\d+)')
_CPU = re.compile(r'(?:User|System) time \(seconds\): ([0-9.]+)')
_RECAP = re.compile(r'^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)'
                    r'\s+failed=(?P<failed>\d+)', re.M)


class RunFailed(Exception):
    """A contender did not do its job; the message holds its exit status and the tail of its output."""


@dataclasses.dataclass
class Sample:
    """One run: seconds of wall time, peak RSS in MB, exit status, output, and the parsed result."""

    seconds: float
    rss_mb: float | None
    cpu_seconds: float | None
    rc: int
    stdout: str
    stderr: str
    result: dict | None = None

    def tail(self, lines=15):
        text = (self.stdout + '\n' + self.stderr).strip().splitlines()
        return '\n'.join(text[-lines:])


class Collection(object):
    """Where the kohakuriver.docker under test lives: <path>/ansible_collections/kohakuriver/docker."""

    def __init__(self, path):
        self.path = Path(path)
        self.root = self.path / 'ansible_collections' / 'kohakuriver' / 'docker'
        self.source = str(path)

    def use(self, source=None):
        """Make it importable in this process (helpers read sidecars with its module_utils)."""
        self.source = source or self.source
        if str(self.path) not in sys.path:
            sys.path.insert(0, str(self.path))
        return self


COLLECTION = Collection(os.environ.get('KR_COLLECTIONS_PATH') or WORKTREE_COLLECTIONS)


def worktree_collection():
    """This checkout as the collection (the link tests/conftest.py makes too), or KR_COLLECTIONS_PATH when set."""
    if 'KR_COLLECTIONS_PATH' in os.environ:
        return COLLECTION.use('KR_COLLECTIONS_PATH=%s' % os.environ['KR_COLLECTIONS_PATH'])
    if not COLLECTION.root.exists():
        COLLECTION.root.parent.mkdir(parents=True, exist_ok=True)
        COLLECTION.root.symlink_to(REPO)
    return COLLECTION.use('the working tree')


def snapshot_collection(folder, revision='HEAD'):
    """A copy of the collection at a git revision under folder, used from now on; returns the commit measured.

    Others commit to this tree while a run lasts: measuring a snapshot keeps every round on the same code.
    """
    commit = subprocess.run(['git', '-C', str(REPO), 'rev-parse', '--short', revision], capture_output=True, text=True,
                            check=True).stdout.strip()
    root = Path(folder) / 'ansible_collections' / 'kohakuriver' / 'docker'
    root.mkdir(parents=True)
    archive = subprocess.run(['git', '-C', str(REPO), 'archive', '--format=tar', revision], capture_output=True, check=True)
    subprocess.run(['tar', '-x', '-C', str(root)], input=archive.stdout, check=True)
    COLLECTION.__init__(folder)  # pylint: disable=unnecessary-dunder-call
    COLLECTION.use('git %s (a snapshot of %s)' % (commit, revision))
    return commit


def module_exists(name):
    return (COLLECTION.root / 'plugins' / 'modules' / ('%s.py' % name)).is_file()


def playbook_exists(name):
    return (COLLECTION.root / 'playbooks' / ('%s.yml' % name)).is_file()


def ansible_env(extra=None):
    """The environment of every ansible-playbook contender: same collections, no colours, no retry files."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTION.path), ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0',
               ANSIBLE_RETRY_FILES_ENABLED='0', ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_DEPRECATION_WARNINGS='0')
    env.update(extra or {})
    return env


def timed(argv, stdin=None, env=None, timeout=3600):
    """Run argv to completion under GNU time; return its Sample (never raises on a non-zero exit)."""
    with tempfile.NamedTemporaryFile(prefix='krbench-time-', suffix='.txt') as report:
        command = [GNU_TIME, '-v', '-o', report.name] + [str(part) for part in argv]
        started = time.perf_counter()
        completed = subprocess.run(command, input=stdin, capture_output=True, text=True, env=env, timeout=timeout,
                                   check=False)
        seconds = time.perf_counter() - started
        text = Path(report.name).read_text(encoding='utf-8', errors='replace')
    found = _MAX_RSS.search(text)
    rss_mb = int(found.group(1)) / 1024.0 if found else None
    cpu = [float(value) for value in _CPU.findall(text)]
    return Sample(seconds, rss_mb, sum(cpu) if cpu else None, completed.returncode, completed.stdout, completed.stderr)


def run_module(name, args, timeout=3600, profile=None):
    """Run kohakuriver.docker.<name> as one process, the way Ansible runs a module on a node (minus AnsiballZ).

    With profile=<path>, the module runs under py-spy (every thread, idle time included) when py-spy is installed,
    else under cProfile (main thread only); the profiler writes its data there.
    """
    source = COLLECTION.root / 'plugins' / 'modules' / ('%s.py' % name)
    stdin = json.dumps({'ANSIBLE_MODULE_ARGS': dict(args, _ansible_check_mode=False, _ansible_diff=False)})
    env = dict(os.environ, PYTHONPATH=str(COLLECTION.path))
    argv = [sys.executable, source]
    if profile and py_spy():
        argv = [py_spy(), 'record', '--idle', '--threads', '--rate', str(PY_SPY_RATE), '--format', 'raw', '--output',
                str(profile), '--'] + argv
    elif profile:
        argv = [sys.executable, '-m', 'cProfile', '-o', str(profile), source]
    sample = timed(argv, stdin=stdin, env=env, timeout=timeout)
    lines = [line for line in sample.stdout.splitlines() if line.startswith('{')]
    sample.result = json.loads(lines[-1]) if lines else None
    if sample.result is None or sample.result.get('failed'):
        message = (sample.result or {}).get('msg') or sample.tail()
        raise RunFailed('module %s failed (rc %d): %s' % (name, sample.rc, message))
    return sample


PY_SPY_RATE = 250


def py_spy():
    """The py-spy executable ($KR_BENCH_PYSPY, beside this Python or on PATH), or None."""
    return os.environ.get('KR_BENCH_PYSPY') or shutil.which('py-spy', path=str(BIN)) or shutil.which('py-spy')


def run_playbook(playbook, inventory, limit=None, extra_vars=None, forks=None, timeout=3600):
    """Run ansible-playbook; the Sample's result is the recap {host: {ok, changed, unreachable, failed}}."""
    argv = [BIN / 'ansible-playbook', '-i', inventory, playbook]
    if limit:
        argv += ['--limit', limit]
    if extra_vars:
        argv += ['-e', json.dumps(extra_vars)]
    if forks:
        argv += ['--forks', str(forks)]
    sample = timed(argv, env=ansible_env(), timeout=timeout)
    sample.result = dict((m.group('host'), dict((k, int(v)) for k, v in m.groupdict().items() if k != 'host'))
                         for m in _RECAP.finditer(sample.stdout))
    if sample.rc != 0 or not sample.result or any(r['failed'] or r['unreachable'] for r in sample.result.values()):
        raise RunFailed('ansible-playbook %s failed (rc %d):\n%s' % (playbook, sample.rc, sample.tail(25)))
    return sample


def run_shell(script, timeout=3600):
    """Run a bash script (docker CLI contenders); a non-zero exit is a RunFailed."""
    sample = timed(['bash', '-euo', 'pipefail', '-c', script], timeout=timeout)
    if sample.rc != 0:
        raise RunFailed('`%s` failed (rc %d):\n%s' % (script, sample.rc, sample.tail()))
    return sample


def changed_hosts(sample):
    """How many hosts a playbook run reported changed."""
    return sum(1 for recap in (sample.result or {}).values() if recap['changed'])
