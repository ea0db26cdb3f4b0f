"""Side-by-side benchmarks of kohakuriver.docker (issue 6); see bench/README.md.

    .venv/bin/python bench/run.py [--size small|full] [--rounds N] [--scenarios 1 2 3 4 5 6 7 8 9]
    .venv/bin/python bench/run.py --cleanup      # remove what an interrupted run left (krbench-* only)

Prints one table per scenario and writes them to bench/results/<UTC timestamp>.md (and .json).
Exit status 0 when every selected scenario completed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
import traceback
import uuid
from pathlib import Path

from krbench import connection, docker_state, extra_runners, incremental, measure, registry_sync, report, scenarios, tarballs

MIB = 1024 * 1024
SIZES = {
    'small': dict(base=20 * MIB, env=5 * MIB, rounds=1),
    'full': dict(base=900 * MIB, env=100 * MIB, rounds=3),
}
RESULTS = measure.REPO / 'bench' / 'results'
ALL_SCENARIOS = ('1', '2', '3', '4', '5', '6', '7', '8', '9')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog='bench/run.py', description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--size', choices=sorted(SIZES), default='full',
                        help='full: base layer 900 MiB + environment layer 100 MiB (default); small: 20 + 5 MiB')
    parser.add_argument('--rounds', type=int, help='rounds per scenario (default 3 for full, 1 for small)')
    parser.add_argument('--scenarios', nargs='+', choices=ALL_SCENARIOS, default=list(ALL_SCENARIOS),
                        help='1 packaging, 2 first sync, 3 update sync, 4 up-to-date sync, 5 scale, '
                             '6 = run 2-4 on the Docker 26 runner too, 7 connection overhead, 8 small change to a large '
                             'environment and rollback, on both engines, 9 scale from the share vs a registry vs a pull-through '
                             'cache (default: all)')
    parser.add_argument('--base-mib', type=int, help='size of the base layer in MiB (overrides --size)')
    parser.add_argument('--env-mib', type=int, help='size of the environment layer in MiB (overrides --size)')
    parser.add_argument('--scale-runners', type=int, default=6, help='runner daemons for scenario 5 (default 6)')
    parser.add_argument('--runners', nargs='+', metavar='NAME',
                        help='the test bed\'s runners for scenarios 2-4 (the first one; every one with 6) and 8 '
                             '(default: runner1 runner2; runner3 keeps its images in containerd)')
    parser.add_argument('--no-profile', action='store_true',
                        help='do not profile our module (one more run under py-spy, or cProfile without it) where it '
                             'misses a target')
    parser.add_argument('--keep-runners', action='store_true',
                        help='leave the private runners scenario 5 started running (bench/README.md)')
    parser.add_argument('--output', type=Path, help='markdown result file (default bench/results/<UTC time>.md)')
    parser.add_argument('--worktree', action='store_true',
                        help='measure the working tree as it is, not a snapshot of the last commit (HEAD)')
    parser.add_argument('--cleanup', action='store_true', help='only remove krbench-* leftovers of earlier runs')
    args = parser.parse_args(argv)
    preset = SIZES[args.size]
    args.base_bytes = (args.base_mib or preset['base'] // MIB) * MIB
    args.env_bytes = (args.env_mib or preset['env'] // MIB) * MIB
    args.rounds = args.rounds or preset['rounds']
    if args.rounds < 1:
        parser.error('--rounds must be at least 1')
    return args


def show(text):
    """Print to stdout; a closed stdout (`| head`) must not stop a run before it has cleaned up."""
    try:
        print(text, flush=True)
    except OSError:
        pass


def _version(argv):
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60).stdout.strip()
    except OSError:
        return 'unknown'


def machine_facts(host, runners):
    """Machine, engines and tool versions for the results header."""
    cpu = next((line.split(':', 1)[1].strip() for line in Path('/proc/cpuinfo').read_text().splitlines()
                if line.startswith('model name')), platform.processor())
    memory = next(int(line.split()[1]) // 1024 for line in Path('/proc/meminfo').read_text().splitlines()
                  if line.startswith('MemTotal'))
    import ansible_collections.community.docker as community_docker  # pylint: disable=import-outside-toplevel,import-error
    manifest = Path(list(community_docker.__path__)[0]) / 'MANIFEST.json'
    community = json.loads(manifest.read_text())['collection_info']['version'] if manifest.exists() else 'unknown'
    commit = _version(['git', '-C', str(measure.REPO), 'rev-parse', '--short', 'HEAD'])
    return [
        'Machine: %s, %s, %d cores, %d MiB RAM, Linux %s' % (platform.node(), cpu, os.cpu_count(), memory, platform.release()),
        'Engines: %s' % ', '.join(daemon.label for daemon in [host] + runners),
        'kohakuriver.docker measured: %s (HEAD when the results were written: git %s)' % (measure.COLLECTION.source, commit),
        'Docker CLI %s; Python %s; ansible-core %s; community.docker %s' % (
            _version(['docker', 'version', '--format', '{{.Client.Version}}']), platform.python_version(),
            _ansible_core_version(), community),
    ]


def _ansible_core_version():
    from ansible.release import __version__  # pylint: disable=import-outside-toplevel
    return __version__


def selected_engines(args, runners):
    return runners[:2] if '6' in args.scenarios else runners[:1]


def scale_runners(count):
    """The runner daemons of scenario 5, from a private test bed (bench/krbench/extra_runners.py); and whether
    this run started that bed (and so stops it at the end)."""
    started = not extra_runners.is_up()
    runners = []
    for node in extra_runners.up(count):
        daemon = docker_state.daemon_of(node)
        daemon.name = docker_state.PREFIX + daemon.name
        runners.append(daemon)
    return runners, started


def sync_playbook_vars(env):
    """Extra vars for kohakuriver.docker.sync naming the one environment to sync (as playbooks/sync.yml documents)."""
    text = (measure.COLLECTION.root / 'playbooks' / 'sync.yml').read_text(encoding='utf-8')
    for name in ('kr_envs', 'envs', 'env', 'environments', 'kohakuriver_sync_envs'):
        if '%s is defined' % name in text or '-e %s=' % name in text or "'%s'" % name in text:
            return {name: [env] if name.endswith('s') else env}
    return {'env': env}


class Run:
    """One benchmark run: setup, the selected scenarios, and the cleanup that always follows."""

    def __init__(self, args):
        self.args = args
        self.state = docker_state.testbed_state()
        self.host = docker_state.daemon_of(self.state['host'])
        self.runners = self._shared_runners(args.runners or [node['name'] for node in self.state['runners'][:2]])
        self.run_id = uuid.uuid4().hex[:8]
        self.work = Path('/var/tmp') / (docker_state.PREFIX + self.run_id)
        self.images = docker_state.Images(self.host, self.run_id, args.base_bytes, args.env_bytes,
                                          self.state['images']['busybox'])
        self.ctx = scenarios.Context(args.size, args.rounds, not args.no_profile, self.host, self.runners, self.images, self.work)
        self.tables = []
        self.daemons = [self.host] + self.runners
        self.started_runners = False
        self.load = [os.getloadavg()]
        self.started = datetime.datetime.now(datetime.timezone.utc)

    def _shared_runners(self, names):
        nodes = dict((node['name'], node) for node in self.state['runners'])
        unknown = [name for name in names if name not in nodes]
        if unknown:
            raise SystemExit('--runners: the test bed has no %s (it has %s)' % (', '.join(unknown), ', '.join(nodes)))
        return [docker_state.daemon_of(nodes[name]) for name in names]

    def say(self, message):
        show('==> %s' % message)

    def setup(self):
        if self.args.worktree or 'KR_COLLECTIONS_PATH' in os.environ:
            measure.worktree_collection()
        else:
            measure.snapshot_collection(self.work / 'collections')
        self.say('run %s: measuring kohakuriver.docker from %s' % (self.run_id, measure.COLLECTION.source))
        self.say('run %s: building the synthetic image on %s (base %d MiB, environment %d MiB)'
                 % (self.run_id, self.host.label, self.args.base_bytes // MIB, self.args.env_bytes // MIB))
        self.ctx.tarball_dir.mkdir(parents=True, exist_ok=True)
        if set(self.args.scenarios) <= {'7'}:
            return  # the connection scenario needs no synthetic image and no tarball
        self.images.build()
        started = time.monotonic()
        path, sidecar = tarballs.make(self.host, self.images, str(self.ctx.tarball_dir))
        self.ctx.v1 = scenarios.Tarball(path, sidecar)
        self.images.new_env_layer()
        path, sidecar = tarballs.make(self.host, self.images, str(self.ctx.tarball_dir))
        self.ctx.v2 = scenarios.Tarball(path, sidecar)
        self.say('tarballs %s and %s (%.0f MB each) made in %.1f s' % (
            os.path.basename(self.ctx.v1.path), os.path.basename(self.ctx.v2.path), sidecar.size / 1e6,
            time.monotonic() - started))
        self.ctx.write_inventory(self.runners)

    def scenario(self, function, *extra):
        self.say(('%s %s' % (function.__name__, ' '.join(getattr(value, 'name', '') for value in extra))).strip())
        started = time.monotonic()
        try:
            found = function(self.ctx, *extra)
        except scenarios.Skipped as exc:
            found = report.Table(function.__name__, function.__name__, '-', [], error='skipped: %s' % exc)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            traceback.print_exc()
            found = report.Table(function.__name__, function.__name__, '-', [], error='%s: %s' % (type(exc).__name__, exc))
        for table in found if isinstance(found, list) else [found]:
            table.notes.append('Scenario time %.0f s, load average %.2f before and %.2f after.'
                               % (time.monotonic() - started, self.load[-1][0], os.getloadavg()[0]))
            self.load.append(os.getloadavg())
            self.tables.append(table)
            show('\n' + report.markdown(table))

    def run(self):
        chosen = set(self.args.scenarios)
        if '6' in chosen and not chosen & {'2', '3', '4'}:
            chosen |= {'2', '3', '4'}
        self.setup()
        if '1' in chosen:
            self.scenario(scenarios.packaging)
        for runner in selected_engines(self.args, self.runners):
            for key, function in (('2', scenarios.first_sync), ('3', scenarios.update_sync), ('4', scenarios.up_to_date)):
                if key in chosen:
                    self.scenario(function, runner)
        if '8' in chosen:
            for runner in self.runners:
                self.scenario(incremental.small_change, runner)
        if '5' in chosen:
            self.scale()
        if '9' in chosen:
            self.registry()
        if '7' in chosen:
            self.scenario(connection.connection_overhead)

    def scale(self):
        try:
            scenarios.require(module='image_sync', playbook='sync')
        except scenarios.Skipped as exc:
            self.tables.append(report.Table('5', '5. Scale', '-', [], error='skipped: %s' % exc))
            show('\n' + report.markdown(self.tables[-1]))
            return
        self.say('bringing up runner daemons for scenario 5 (%d in all)' % self.args.scale_runners)
        runners, self.started_runners = scale_runners(self.args.scale_runners)
        self.daemons += [runner for runner in runners if runner.name not in [d.name for d in self.daemons]]
        self.ctx.write_inventory(runners)
        self.scenario(scenarios.scale, runners, sync_playbook_vars(self.images.env))

    def registry(self):
        self.say('scenario 9 on the private runner daemons (%d in all)' % self.args.scale_runners)
        runners, started = scale_runners(self.args.scale_runners)
        self.started_runners = self.started_runners or started
        self.daemons += [runner for runner in runners if runner.name not in [d.name for d in self.daemons]]
        self.ctx.write_inventory(runners)
        self.scenario(registry_sync.registry_sync, runners, extra_runners.registries(), sync_playbook_vars(self.images.env))

    def cleanup(self):
        self.say('cleaning up run %s' % self.run_id)
        for line in docker_state.cleanup(self.host, self.daemons, self.run_id, [str(self.work)]):
            show('    removed %s' % line)
        if self.images.pulled_busybox:
            self.host.remove_image(self.images.busybox)
        if self.started_runners and not self.args.keep_runners:
            self.say('stopping the private runners this run started (%s)' % extra_runners.BED_DIR)
            extra_runners.down()

    def write(self):
        facts = machine_facts(self.host, self.runners)
        finished = datetime.datetime.now(datetime.timezone.utc)
        python = os.path.relpath(sys.executable, measure.REPO) if sys.executable.startswith(str(measure.REPO)) else sys.executable
        spy = 'KR_BENCH_PYSPY=%s ' % os.environ['KR_BENCH_PYSPY'] if os.environ.get('KR_BENCH_PYSPY') else ''
        command = '%s%s bench/run.py %s' % (spy, python, ' '.join(shlex.quote(arg) for arg in sys.argv[1:]))
        header = ['# Benchmark results, %s' % self.started.strftime('%Y-%m-%d %H:%M UTC'), '',
                  'Command: `%s` (%.0f min)' % (command.strip(), (finished - self.started).total_seconds() / 60), '']
        header += ['- %s' % line for line in facts]
        header += ['- Sizes: base layer %d MiB, environment layer %d MiB; %d round(s) per scenario, contenders '
                   'alternating; medians.' % (self.args.base_bytes // MIB, self.args.env_bytes // MIB, self.args.rounds),
                   '- Load average (1 min) during the run: %s' % ', '.join('%.2f' % load[0] for load in self.load), '']
        text = '\n'.join(header) + '\n' + report.summary(self.tables) + '\n' + '\n'.join(
            report.markdown(table) for table in self.tables)
        output = self.args.output or RESULTS / ('%s.md' % self.started.strftime('%Y%m%dT%H%M%SZ'))
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding='utf-8')
        output.with_suffix('.json').write_text(json.dumps([dict(
            key=table.key, title=table.title, error=table.error, complete=table.complete(),
            verdicts=table.verdicts(),
            rows=[dict(name=row.name, seconds=row.seconds, median=row.median, peak_rss_mb=row.peak_rss,
                       ratio=table.ratio(row.name), notes=row.notes + row.condition_failures) for row in table.rows],
        ) for table in self.tables], indent=1), encoding='utf-8')
        show('\n' + report.summary(self.tables))
        self.say('results in %s' % output)


LOCK = '/var/tmp/krbench.lock'


def one_run_at_a_time():
    """Hold an exclusive lock for the whole run: two benchmarks at once spoil each other's timings and would share
    (and stop) scenario 5's private runners. Waits for a run in progress."""
    handle = open(LOCK, 'a+', encoding='utf-8')  # pylint: disable=consider-using-with
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        show('==> waiting for the benchmark run in progress (%s) to finish' % (handle.read().strip() or LOCK))
        fcntl.flock(handle, fcntl.LOCK_EX)
    handle.seek(0)
    handle.truncate()
    handle.write('pid %d since %s' % (os.getpid(), time.strftime('%H:%M:%S')))
    handle.flush()
    return handle


def _terminate(signum, frame):
    del frame
    raise SystemExit(128 + signum)


def cleanup_leftovers():
    """--cleanup: every krbench-* leftover of runs killed too hard to clean up, and the private runners."""
    state = docker_state.testbed_state()
    daemons = [docker_state.daemon_of(node) for node in [state['host']] + state['runners']]
    leftovers = [str(path) for path in Path('/var/tmp').glob(docker_state.PREFIX + '*')
                 if path.is_dir() and path.name != os.path.basename(extra_runners.BED_DIR)]
    for line in docker_state.cleanup(daemons[0], daemons, None, leftovers):
        show('removed %s' % line)
    extra_runners.down()
    return 0


def main(argv=None):
    args = parse_args(argv)
    with one_run_at_a_time():
        signal.signal(signal.SIGTERM, _terminate)
        signal.signal(signal.SIGHUP, _terminate)
        if args.cleanup:
            return cleanup_leftovers()
        bench = Run(args)
        try:
            bench.run()
        finally:
            bench.cleanup()
        bench.write()
    complete = [table for table in bench.tables if table.complete()]
    return 0 if len(complete) == len(bench.tables) else 1


if __name__ == '__main__':
    sys.exit(main())
