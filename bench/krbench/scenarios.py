"""The scenarios of issue 6. Each runs its contenders alternately, round after round, resetting state before
every run so that each run of a contender measures the same thing, and returns one report.Table.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Callable

from krbench import measure
from krbench.docker_state import remove_env_images
from krbench import report
from krbench.report import Row, Table, Target

IMAGE_SYNC_MODULE = 'image_sync module'
IMAGE_SYNC_PLAYBOOK = 'image_sync playbook'
DOCKER_LOAD = 'docker load -i'
THIN_LOAD = 'docker load -i of the thin archive image_sync sends'
IMAGE_LOAD_PLAYBOOK = 'community.docker docker_image_load playbook'
PING_PLAYBOOK = 'ansible.builtin.ping playbook'
PING_MODULE = 'ansible.builtin.ping module as one process'
SIGNED_SYNC_PLAYBOOK = 'image_sync playbook, signature checked'
SIGNED_SYNC_MODULE = 'image_sync module, signature checked'
SIGNATURE_NAMESPACE = 'kohakuriver.docker-sidecar@v1'
TARBALL_MODULE = 'tarball module'
COMMIT_SAVE = 'docker commit + docker save -o'
COMMIT_SAVE_SYNC = 'docker commit + docker save -o + sync FILE'
SYNC_PLAYBOOK = 'sync.yml'
PARALLEL_LOAD = 'docker load -i on every runner at once'
MB = 1000 * 1000


class Skipped(Exception):
    """A scenario cannot run yet (its module or playbook has not landed)."""


def ping_module():
    """Ansible's ping module run as our modules are (one process, arguments on stdin): Python's start-up, Ansible's
    import and exit_json, the part of the module's time no module avoids."""
    sample = measure.timed([sys.executable, '-m', 'ansible.modules.ping'],
                           stdin=json.dumps({'ANSIBLE_MODULE_ARGS': {'_ansible_check_mode': False}}))
    if sample.rc != 0 or '"pong"' not in sample.stdout:
        raise measure.RunFailed('the ping module failed (rc %d): %s' % (sample.rc, sample.tail()))
    return sample


@dataclasses.dataclass
class Contender:
    name: str
    run: Callable
    prepare: Callable = lambda: None
    check: Callable = lambda sample: None
    rss_label: str = ''
    profile: Callable = None


@dataclasses.dataclass
class Tarball:
    path: str
    sidecar: dict  # a sidecar.Sidecar of the collection measured: its fields are read through its accessors

    @property
    def image_id(self):
        return self.sidecar.image_id

    @property
    def timestamp(self):
        return self.sidecar.timestamp


@dataclasses.dataclass
class Context:
    """What every scenario shares: sizes, rounds, engines, the synthetic images, tarballs and folders."""

    size: str
    rounds: int
    profile: bool
    host: object
    runners: list
    images: object
    work: Path
    v1: Tarball = None
    v2: Tarball = None
    inventory: Path = None

    @property
    def share(self):
        return self.work / 'share'

    @property
    def tarball_dir(self):
        return self.share / 'kohakuriver-containers'

    def state_dir(self, runner):
        return self.work / 'state' / runner.name

    def write_inventory(self, runners):
        """A JSON inventory of the Host and the given runners, all reached with a local connection."""
        common = {'ansible_connection': 'local', 'ansible_python_interpreter': str(measure.BIN / 'python')}
        nodes = dict((runner.name, dict(kohakuriver_docker_host=runner.docker_host,
                                        kohakuriver_state_dir=str(self.state_dir(runner)))) for runner in runners)
        inventory = {'all': {
            'vars': dict(common, kohakuriver_shared_dir=str(self.share), kohakuriver_tarball_dir=str(self.tarball_dir),
                         krbench_env=self.images.env),
            'children': {
                'kohakuriver_host': {'hosts': {'host': {'kohakuriver_docker_host': self.host.docker_host}}},
                'kohakuriver_runners': {'hosts': nodes},
                'krbench_runners': {'hosts': dict((name, {}) for name in nodes)},
            }}}
        self.inventory = self.work / 'inventory.json'
        self.inventory.write_text(json.dumps(inventory, indent=2), encoding='utf-8')
        return self.inventory


def settle():
    """Flush dirty pages (not timed), so one contender's writes are not written back during the next one's run."""
    os.sync()


def warm(path):
    """Read a file once so that every contender reads it from the page cache."""
    with open(path, 'rb') as handle:
        while handle.read(8 << 20):
            pass


def alternate(ctx, table, contenders, warmup=False, cached=()):
    """rounds x every contender, the starting contender rotating each round; record into table's rows.

    The files in cached are read before every run, so each contender finds them in the page cache whatever the
    previous one did to it (a reader may drop what it read). A contender that fails (or does not do its job)
    ends the table: its error is recorded, the rounds stop.
    """
    try:
        if warmup:
            for contender in contenders:
                contender.prepare()
                contender.run()
        for index in range(ctx.rounds):
            shift = index % len(contenders)
            for contender in contenders[shift:] + contenders[:shift]:
                contender.prepare()
                for path in cached:
                    warm(path)
                settle()
                sample = contender.run()
                note = contender.check(sample)
                table.row(contender.name).add(sample, note)
                settle()
    except Exception as exc:  # pylint: disable=broad-exception-caught
        table.error = '%s: %s' % (type(exc).__name__, exc)


def profile_missed(ctx, table, contenders, cached=()):
    """One more run of each contender that missed its target, under cProfile; its summary goes into the notes."""
    if not ctx.profile or table.error:
        return
    missed = [target.contender for target in table.targets
              if table.ratio(target.contender) is not None and table.ratio(target.contender) > target.ratio]
    for contender in contenders:
        if contender.name in missed and contender.profile:
            path = ctx.work / ('profile-%s.prof' % table.key)
            try:
                contender.prepare()
                for cached_path in cached:
                    warm(cached_path)
                settle()
                sample, label = contender.profile(path)
                ours = set(item.name for folder in ('modules', 'module_utils')
                           for item in (measure.COLLECTION.root / 'plugins' / folder).glob('*.py'))
                table.notes.extend(report.profile_notes(path, label, sample.seconds, ours, measure.PY_SPY_RATE))
            except Exception as exc:  # pylint: disable=broad-exception-caught
                table.notes.append('Profiling %s failed: %s' % (contender.name, exc))


def new_table(key, title, reference, contenders, targets=(), memory_target_mb=None):
    rows = [Row(contender.name, rss_label=contender.rss_label) for contender in contenders]
    return Table(key, title, reference, rows, list(targets), memory_target_mb=dict(memory_target_mb or {}))


def require(module=None, playbook=None):
    if module and not measure.module_exists(module):
        raise Skipped('kohakuriver.docker.%s is not in plugins/modules yet' % module)
    if playbook and not measure.playbook_exists(playbook):
        raise Skipped('playbooks/%s.yml is not there yet' % playbook)


def docker(daemon, *words):
    return 'docker -H %s %s' % (shlex.quote(daemon.docker_host), ' '.join(shlex.quote(str(word)) for word in words))


def expect(condition, message):
    if not condition:
        raise measure.RunFailed(message)


def _mb(size):
    return '%.0f MB' % (size / MB)


# ---------------------------------------------------------------- 1. packaging

def packaging(ctx):
    require(module='tarball')
    host, images = ctx.host, ctx.images
    module_dir, cli_dir = ctx.work / 'pack-module', ctx.work / 'pack-cli'
    cli_image = '%s-cli:latest' % images.base_image.split(':')[0]
    cli_file = cli_dir / ('%s.tar' % images.env)
    made = {}

    def empty(folder):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)

    def module_prepare():
        # The committed image stays: with the default layout (chain) the environment container continues from it,
        # and the module removes the superseded ones nothing uses itself (its retention), as a user sees it.
        empty(module_dir)

    def module_run(profile=None):
        return measure.run_module('tarball', dict(name=images.env, tarball_dir=str(module_dir), keep=1,
                                                  docker_host=host.docker_host, timeout=1800), profile=profile)

    def module_profile(path):
        sample = module_run(path)
        module_check(sample)
        return sample, 'the tarball module'

    def module_check(sample):
        tarball = sample.result['tarball']
        expect(sample.result['changed'] and os.path.isfile(tarball['path']), 'the tarball module made no tarball')
        made['size'] = tarball['size']
        update = sample.result.get('runner_update') or {}
        made['layout'], made['layers'] = update.get('layout'), update.get('layers')
        if (sample.result.get('save') or {}).get('seconds'):
            made.setdefault('save_seconds', []).append(sample.result['save']['seconds'])
        return None

    def cli_prepare():
        empty(cli_dir)
        host.remove_image(cli_image)

    def cli_run(sync):
        script = '%s >/dev/null && %s' % (docker(host, 'commit', images.container_name, cli_image),
                                          docker(host, 'save', '-o', cli_file, cli_image))
        return measure.run_shell(script + (' && sync %s' % shlex.quote(str(cli_file)) if sync else ''))

    def cli_check(sample):
        expect(cli_file.is_file() and host.has_image(cli_image), 'docker commit + save made no file')

    contenders = [
        Contender(TARBALL_MODULE, module_run, module_prepare, module_check, profile=module_profile),
        Contender(COMMIT_SAVE, lambda: cli_run(False), cli_prepare, cli_check, rss_label=' (CLI only)'),
        Contender(COMMIT_SAVE_SYNC, lambda: cli_run(True), cli_prepare, cli_check, rss_label=' (CLI only)'),
    ]
    table = new_table('1', '1. Packaging on %s' % host.label, COMMIT_SAVE, contenders,
                      [Target(TARBALL_MODULE, 1.10)], {TARBALL_MODULE: 100})
    try:
        alternate(ctx, table, contenders)
        profile_missed(ctx, table, contenders)
    finally:
        module_prepare()
        cli_prepare()
    table.notes.append('Image: %s (the tarball the module made, %s layers). The module stops nothing (the environment '
                       'container is not running), commits, streams `docker save` into a hidden file while '
                       'hashing and indexing it, fsyncs it and publishes it with its sidecar; `docker save -o` '
                       'does not fsync, hence the third row.' % (_mb(made.get('size', 0)), made.get('layers')))
    table.notes.append('Layout measured: %s (the default). With it the module also continues the environment container '
                       'from its commit (a new container of the same config from the committed image; the old one '
                       'removed), and that is in its time. Both contenders commit the same unchanged container (an empty '
                       'commit adds no layer), so every run saves the same layers. The committed images stay (the '
                       'container runs from the newest; the module removes superseded ones nothing uses); the '
                       'CLI\'s image is removed before each of its runs.' % made.get('layout'))
    if made.get('save_seconds'):
        save = sorted(made['save_seconds'])[len(made['save_seconds']) // 2]
        table.notes.append('The module\'s own report: streaming `docker save` to disk took %.1f s of its run (median, '
                           '%.0f MB/s); the rest is start-up, commit, fsync, publishing and retention.'
                           % (save, made['size'] / MB / save))
    return table


# ---------------------------------------------------------------- helpers for 2-4

def _reset_empty(ctx, runner):
    remove_env_images(runner, ctx.images.env)


def _install(ctx, runner, tarball):
    """Make runner look like after a sync of tarball: loaded, tagged :base and :<timestamp>."""
    runner.load(tarball.path)
    _tag_current(ctx, runner, tarball)


def _tag_current(ctx, runner, tarball):
    """Tag tarball's image (which runner holds) :base and :<timestamp>, by the ID runner's image store gives it."""
    runner.tag_image_of(tarball.sidecar, ctx.images.repository, 'base')
    runner.tag_image_of(tarball.sidecar, ctx.images.repository, tarball.timestamp)


def _has(runner, tarball):
    """Does runner hold tarball's image (by its config digest, or on the containerd store its manifest digest)?"""
    return runner.holds(tarball.sidecar)


def _sync_module(ctx, runner, profile=None, signed=None):
    """image_sync of the benchmark environment; signed: an allowed-signers file, checked with require_signature."""
    args = dict(name=ctx.images.env, tarball_dir=str(ctx.tarball_dir), state_dir=str(ctx.state_dir(runner)),
                docker_host=runner.docker_host, timeout=1800)
    if signed:
        args.update(allowed_signers=signed, require_signature=True)
    return measure.run_module('image_sync', args, profile=profile)


def _sync_profile(ctx, runner):
    def profile(path):
        return _sync_module(ctx, runner, path), 'the image_sync module'
    return profile


def _sync_note(sample):
    """What image_sync reports it did: action, thin or full load, layers and bytes sent."""
    result = sample.result
    note = 'action %s' % result.get('action')
    if result.get('action') == 'load':
        if 'thin' in result:
            note += ', %s load' % ('thin' if result['thin'] else 'full')
        if 'layers_sent' in result:
            note += ' (%d layers sent, %d skipped)' % (result['layers_sent'], result.get('layers_skipped') or 0)
        if result.get('bytes_sent') is not None:
            note += ', sent %s' % _mb(result['bytes_sent'])
        note += ', read %s of the tarball' % _mb(result.get('bytes_read') or 0)
    return note


def _loaded_check(runner, tarball, what):
    def check(sample):
        expect(_has(runner, tarball), '%s did not put %s on %s' % (what, tarball.image_id, runner.name))
        if isinstance(sample.result, dict) and 'action' in sample.result:
            expect(sample.result.get('image_id') == runner.id_of(tarball.sidecar), '%s reports image %s, %s holds %s'
                   % (what, sample.result.get('image_id'), runner.name, runner.id_of(tarball.sidecar)))
            return _sync_note(sample)
        if isinstance(sample.result, dict) and sample.result:
            return 'changed=%d' % sum(recap['changed'] for recap in sample.result.values())
        return None
    return check


def _playbook(ctx, name, limit, extra_vars=None, forks=None):
    path = name if name.startswith('kohakuriver.docker.') else measure.PLAYBOOKS / name
    return measure.run_playbook(path, ctx.inventory, limit=limit, extra_vars=extra_vars, forks=forks)


# ---------------------------------------------------------------- 2. first sync

def first_sync(ctx, runner):
    require(module='image_sync')
    v2 = ctx.v2

    def empty():
        _reset_empty(ctx, runner)

    contenders = [
        Contender(IMAGE_SYNC_MODULE, lambda: _sync_module(ctx, runner), empty, _loaded_check(runner, v2, 'image_sync'),
                  profile=_sync_profile(ctx, runner)),
        Contender(DOCKER_LOAD, lambda: measure.run_shell(docker(runner, 'load', '-i', v2.path)), empty,
                  _loaded_check(runner, v2, 'docker load'), rss_label=' (CLI only)'),
        Contender(IMAGE_LOAD_PLAYBOOK, lambda: _playbook(ctx, 'image_load.yml', runner.name, {'krbench_tarball': v2.path}),
                  empty, _loaded_check(runner, v2, 'docker_image_load'), rss_label=' (whole playbook)'),
        Contender(IMAGE_SYNC_PLAYBOOK, lambda: _playbook(ctx, 'image_sync.yml', runner.name), empty,
                  _loaded_check(runner, v2, 'the image_sync playbook'), rss_label=' (whole playbook)'),
    ]
    table = new_table('2-' + runner.name, '2. First sync onto an empty runner: %s' % runner.label, DOCKER_LOAD,
                      contenders, [Target(IMAGE_SYNC_MODULE, 1.10)])
    try:
        alternate(ctx, table, contenders, cached=[v2.path])
        profile_missed(ctx, table, contenders, [v2.path])
    finally:
        empty()
    table.notes.append('Tarball %s (%s, %s layout), read from the page cache. "Empty": the runner holds none of '
                       'its layers except busybox\'s.' % (os.path.basename(v2.path), _mb(v2.sidecar.size),
                                                          v2.sidecar.archive_format))
    return table


# ---------------------------------------------------------------- 3. update sync

def _base_share(ctx):
    """The fraction of the new tarball's bytes that are layers the previous version already has."""
    have = set(ctx.v1.sidecar.layers)
    sizes = dict((member.name, member.size) for member in ctx.v2.sidecar.members)
    shared = sum(sizes[name] for diff_id, name in zip(ctx.v2.sidecar.layers, ctx.v2.sidecar.layer_members)
                 if diff_id in have)
    return shared / float(ctx.v2.sidecar.size)


def _thin_archive(ctx, runner, v1=None, v2=None, name='thin-v2'):
    """The archive image_sync sends for v2 to a runner holding v1 (the run's, unless given), written once to a file:
    the daemon's own share. Its layout is the one image_sync sends that runner: OCI to the containerd image store,
    docker-legacy otherwise."""
    v1, v2 = v1 or ctx.v1, v2 or ctx.v2
    oci = runner.containerd_store
    path = ctx.work / ('%s%s.tar' % (name, '-oci' if oci else ''))
    if not path.exists():
        # pylint: disable-next=import-outside-toplevel,import-error
        from ansible_collections.kohakuriver.docker.plugins.module_utils.layers import chain_ids, held_layer_count
        # pylint: disable-next=import-outside-toplevel,import-error
        from ansible_collections.kohakuriver.docker.plugins.module_utils.image_archive import ImageArchive
        # pylint: disable-next=import-outside-toplevel,import-error
        from ansible_collections.kohakuriver.docker.plugins.module_utils.loadstream import OciThinStream, ThinStream
        archive = ImageArchive(v2.path, v2.sidecar)
        held = held_layer_count(archive.diff_ids, set(chain_ids(v1.sidecar.layers)))
        with open(path, 'wb') as out:
            for piece in (OciThinStream if oci else ThinStream)(archive, held):
                out.write(piece)
    return path


def update_sync(ctx, runner):
    require(module='image_sync')
    v1, v2, images = ctx.v1, ctx.v2, ctx.images
    thin = _thin_archive(ctx, runner)

    def previous_version():
        runner.remove_image_of(v2.sidecar)
        if not _has(runner, v1):
            _install(ctx, runner, v1)
        runner.tag_image_of(v1.sidecar, images.repository, 'base')

    contenders = [
        Contender(IMAGE_SYNC_MODULE, lambda: _sync_module(ctx, runner), previous_version,
                  _loaded_check(runner, v2, 'image_sync'), profile=_sync_profile(ctx, runner)),
        Contender(DOCKER_LOAD, lambda: measure.run_shell(docker(runner, 'load', '-i', v2.path)), previous_version,
                  _loaded_check(runner, v2, 'docker load'), rss_label=' (CLI only)'),
        Contender(THIN_LOAD, lambda: measure.run_shell(docker(runner, 'load', '-i', thin)), previous_version,
                  _loaded_check(runner, v2, 'docker load of the thin archive'), rss_label=' (CLI only)'),
    ]
    share = _base_share(ctx)
    table = new_table('3-' + runner.name, '3. Update sync (runner has the previous version): %s' % runner.label,
                      DOCKER_LOAD, contenders, [Target(IMAGE_SYNC_MODULE, 0.35)] if share >= 0.8 else [])
    _reset_empty(ctx, runner)
    try:
        alternate(ctx, table, contenders, cached=[v2.path])
        profile_missed(ctx, table, contenders, [v2.path])
    finally:
        _reset_empty(ctx, runner)
    table.notes.append('%.0f %% of the new tarball\'s %s are layers the runner already has (the target applies from '
                       '80 %%).' % (share * 100, _mb(v2.sidecar.size)))
    table.notes.append('The last row is the daemon\'s own share of a thin load: the CLI sending the same %s archive '
                       '(%s) from a file. No client can load the update faster than that row; the module\'s time above '
                       'it is its Python start-up, imports and API calls.' % (_mb(os.path.getsize(thin)), thin.name))
    return table


# ---------------------------------------------------------------- 4. up-to-date sync

def _signed(ctx, tarball):
    """Sign tarball's sidecar as the tarball module does with signing_key (ssh-keygen -Y sign); the allowed-signers
    file that accepts it."""
    keys = ctx.work / 'signing'
    allowed = keys / 'allowed_signers'
    if not allowed.exists():
        keys.mkdir(exist_ok=True)
        measure.run_shell('ssh-keygen -q -t ed25519 -N "" -f %s' % shlex.quote(str(keys / 'key')))
        public = (keys / 'key.pub').read_text(encoding='utf-8').split()
        allowed.write_text('krbench-host namespaces="%s" %s %s\n' % (SIGNATURE_NAMESPACE, public[0], public[1]),
                           encoding='utf-8')
    measure.run_shell('ssh-keygen -Y sign -q -f %s -n %s < %s > %s' % (
        shlex.quote(str(keys / 'key')), SIGNATURE_NAMESPACE, shlex.quote(tarball.path + '.json'),
        shlex.quote(tarball.path + '.json.sig')))
    return allowed


def up_to_date(ctx, runner):
    require(module='image_sync')
    v2, images = ctx.v2, ctx.images

    def current():
        if not _has(runner, v2):
            runner.load(v2.path)
        _tag_current(ctx, runner, v2)

    def unchanged(what):
        def check(sample):
            changed = measure.changed_hosts(sample)
            expect(runner.image_id(images.repository + ':base') == runner.id_of(v2.sidecar), '%s moved :base' % what)
            if changed:
                row = table.row(what)
                failure = 'reported changed'
                if failure not in row.condition_failures:
                    row.condition_failures.append(failure)
            return 'changed=%d' % changed
        return check

    def module_check(sample):
        expect(sample.result.get('action') == 'none' and not sample.result.get('changed'),
               'image_sync found work to do on an up-to-date runner: %s' % sample.result.get('action'))
        return 'unchanged'

    signed_vars = {'krbench_allowed_signers': str(_signed(ctx, v2))}

    contenders = [
        Contender(PING_PLAYBOOK, lambda: _playbook(ctx, 'ping.yml', runner.name), current, unchanged(PING_PLAYBOOK),
                  rss_label=' (whole playbook)'),
        Contender(IMAGE_SYNC_PLAYBOOK, lambda: _playbook(ctx, 'image_sync.yml', runner.name), current,
                  unchanged(IMAGE_SYNC_PLAYBOOK), rss_label=' (whole playbook)', profile=_sync_profile(ctx, runner)),
        Contender(SIGNED_SYNC_PLAYBOOK, lambda: _playbook(ctx, 'image_sync.yml', runner.name, signed_vars), current,
                  unchanged(SIGNED_SYNC_PLAYBOOK), rss_label=' (whole playbook)'),
        Contender(IMAGE_LOAD_PLAYBOOK, lambda: _playbook(ctx, 'image_load.yml', runner.name, {'krbench_tarball': v2.path}),
                  current, unchanged(IMAGE_LOAD_PLAYBOOK), rss_label=' (whole playbook)'),
        Contender(IMAGE_SYNC_MODULE, lambda: _sync_module(ctx, runner), current, module_check),
        Contender(SIGNED_SYNC_MODULE, lambda: _sync_module(ctx, runner, signed=signed_vars['krbench_allowed_signers']),
                  current, module_check),
        Contender(DOCKER_LOAD, lambda: measure.run_shell(docker(runner, 'load', '-i', v2.path)), current,
                  lambda sample: None, rss_label=' (CLI only)'),
    ]
    table = new_table('4-' + runner.name, '4. Up-to-date sync: %s' % runner.label, PING_PLAYBOOK, contenders,
                      [Target(IMAGE_SYNC_PLAYBOOK, 1.15, 'reports unchanged'),
                       Target(SIGNED_SYNC_PLAYBOOK, 1.15, 'reports unchanged')])
    _reset_empty(ctx, runner)
    try:
        alternate(ctx, table, contenders, warmup=True, cached=[v2.path])
        profile_missed(ctx, table, contenders, [v2.path])
    finally:
        _reset_empty(ctx, runner)
    table.notes.append('Each contender ran once untimed first (Python bytecode caches). The community.docker row '
                       'must report changed: it always does, and rereads the whole tarball. The signed row checks the '
                       'sidecar\'s OpenSSH signature (allowed_signers, require_signature) before anything else.')
    return table


# ---------------------------------------------------------------- 5. scale

def _on_all(runners, action):
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(runners)) as pool:
        list(pool.map(action, runners))


def scale(ctx, runners, sync_vars):
    require(module='image_sync', playbook='sync')
    v2 = ctx.v2
    names = ','.join(runner.name for runner in runners)
    forks = len(runners)

    def empty_all():
        _on_all(runners, lambda runner: _reset_empty(ctx, runner))

    def current_all():
        def current(runner):
            if not _has(runner, v2):
                runner.load(v2.path)
            _tag_current(ctx, runner, v2)
        _on_all(runners, current)

    def all_loaded(what, want_changed=None):
        def check(sample):
            missing = [runner.name for runner in runners if not _has(runner, v2)]
            expect(not missing, '%s left %s without the image' % (what, ', '.join(missing)))
            if sample.result:
                changed = measure.changed_hosts(sample)
                if want_changed is not None and changed != want_changed:
                    row = first.row(what) if want_changed else second.row(what)
                    failure = 'reported %d of %d runners changed' % (changed, len(runners))
                    if failure not in row.condition_failures:
                        row.condition_failures.append(failure)
                return 'changed on %d of %d runners' % (changed, len(runners))
            return None
        return check

    parallel = ' '.join('%s & pids+=($!);' % docker(runner, 'load', '-i', v2.path) for runner in runners)
    parallel_script = 'pids=(); %s for pid in "${pids[@]}"; do wait "$pid"; done' % parallel

    def sync_run():
        return _playbook(ctx, 'kohakuriver.docker.sync', names, sync_vars, forks)

    first_contenders = [
        Contender(SYNC_PLAYBOOK, sync_run, empty_all, all_loaded(SYNC_PLAYBOOK, len(runners)), ' (whole playbook)'),
        Contender(PARALLEL_LOAD, lambda: measure.run_shell(parallel_script), empty_all, all_loaded(PARALLEL_LOAD),
                  ' (largest CLI)'),
    ]
    first = new_table('5-first', '5. Scale, first sync of %d runners (forks %d)' % (len(runners), forks), PARALLEL_LOAD,
                      first_contenders)
    second_contenders = [
        Contender(PING_PLAYBOOK, lambda: _playbook(ctx, 'ping.yml', names, forks=forks), current_all,
                  all_loaded(PING_PLAYBOOK), ' (whole playbook)'),
        Contender(SYNC_PLAYBOOK, sync_run, current_all, all_loaded(SYNC_PLAYBOOK, 0), ' (whole playbook)'),
        Contender(IMAGE_LOAD_PLAYBOOK, lambda: _playbook(ctx, 'image_load.yml', names, {'krbench_tarball': v2.path}, forks),
                  current_all, all_loaded(IMAGE_LOAD_PLAYBOOK), ' (whole playbook)'),
    ]
    second = new_table('5-current', '5. Scale, up-to-date run on %d runners (forks %d)' % (len(runners), forks),
                       PING_PLAYBOOK, second_contenders)
    engines = ', '.join(runner.label for runner in runners)
    try:
        alternate(ctx, first, first_contenders, cached=[v2.path])
        alternate(ctx, second, second_contenders, warmup=True, cached=[v2.path])
    finally:
        empty_all()
    first.notes.append('Runners: %s. All daemons share this machine\'s 2 cores and one disk, so this measures '
                       'contention as much as Ansible\'s parallelism.' % engines)
    second.notes.append('No target in issue 6 for scale; the bar of scenario 4 (<= 1.15 x ping, unchanged) is the '
                        'yardstick. Each contender ran once untimed first.')
    return [first, second]
