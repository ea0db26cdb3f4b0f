"""Scenario 8 (issue 13): a small change to a large environment, packaged as a chain and synced onto a runner that
holds the previous version; the same change packaged the 0.1 way (flat layout); and a rollback to the previous
version, which the runner still holds.

The environments are built once per run, on the base image of the run (900 MiB full, 20 MiB small):
- `<env>-inc`: a running environment container; `docker exec` writes the environment layer (500 MiB of random data,
  like a pip install; 10 MiB small), the `tarball` module packages v1 (layout chain), `docker exec` writes the change
  (5 MiB; 1 MiB small), and the module packages v2, which is v1's layers plus one layer of the change.
- `<env>-flat`: the same two steps in a second container, packaged once with `layout: flat` after the change (the
  0.1 shape: one layer over the base holding everything, so an update carries the whole environment layer again).
"""

from __future__ import annotations

import os

from krbench import measure
from krbench.scenarios import (
    DOCKER_LOAD, IMAGE_SYNC_MODULE, PING_MODULE, PING_PLAYBOOK, THIN_LOAD, Contender, Tarball, _mb, _playbook, _thin_archive, alternate,
    docker, expect, new_table, ping_module, profile_missed, require,
)
from krbench.report import Target

MIB = 1024 * 1024
SIZES = {'full': (500 * MIB, 5 * MIB), 'small': (10 * MIB, 1 * MIB)}
FLAT_SYNC = 'image_sync module, the same change packaged flat (0.1)'
ROLLBACK_PLAYBOOK = 'rollback: one image_sync task with pin'
ROLLBACK_COLLECTION = 'kohakuriver.docker.rollback playbook'
ROLLBACK_MODULE = 'rollback: image_sync module with pin'


class Environments(object):
    """The chained and the flat environment of one run, their tarballs and folders (built on first use)."""

    def __init__(self, ctx):
        self.ctx = ctx
        self.env = ctx.images.env + '-inc'
        self.flat_env = ctx.images.env + '-flat'
        self.env_bytes, self.change_bytes = SIZES[ctx.size]
        self.chain_dir = ctx.work / 'inc-share' / 'kohakuriver-containers'
        self.flat_dir = ctx.work / 'flat-share' / 'kohakuriver-containers'
        self.v1 = self.v2 = self.flat_v2 = None
        self.packaged = {}
        self.failed = None

    @property
    def repository(self):
        return 'kohakuriver/' + self.env

    def _container(self, env):
        """A running environment container on the run's base image, made as users make one (the container module)."""
        measure.run_module('container', dict(name=env, image=self.ctx.images.base_image, pull='never', state='started',
                                             docker_host=self.ctx.host.docker_host))

    def _exec(self, env, script):
        code, output = self.ctx.host.client.containers.get('kohakuriver-env-' + env).exec_run(['sh', '-c', script])
        if code != 0:
            raise RuntimeError('%s in %s failed: %s' % (script, env, output[-2000:]))

    def _package(self, env, folder, layout):
        folder.mkdir(parents=True, exist_ok=True)
        sample = measure.run_module('tarball', dict(name=env, tarball_dir=str(folder), keep=3, force=True, layout=layout,
                                                    docker_host=self.ctx.host.docker_host, timeout=1800))
        path = sample.result['tarball']['path']
        self.packaged[os.path.basename(path)] = dict(seconds=sample.seconds, runner_update=sample.result.get('runner_update'))
        from ansible_collections.kohakuriver.docker.plugins.module_utils import store  # pylint: disable=import-outside-toplevel,import-error
        return Tarball(path, store.read_sidecar(path))

    def build(self):
        if self.failed:
            raise RuntimeError('building the environments of scenario 8 failed before: %s' % self.failed)
        if self.v2 is not None:
            return self
        try:
            return self._build()
        except Exception as exc:
            self.failed = '%s: %s' % (type(exc).__name__, exc)
            raise

    def _build(self):
        env_layer = 'head -c %d /dev/urandom > /krbench-site-packages.bin' % self.env_bytes
        change = 'head -c %d /dev/urandom > /krbench-change.bin' % self.change_bytes
        for env in (self.env, self.flat_env):
            self._container(env)
            self._exec(env, env_layer)
        self.v1 = self._package(self.env, self.chain_dir, 'chain')
        for env in (self.env, self.flat_env):
            self._exec(env, change)
        self.v2 = self._package(self.env, self.chain_dir, 'chain')
        self.flat_v2 = self._package(self.flat_env, self.flat_dir, 'flat')
        return self


def environments(ctx):
    if getattr(ctx, 'incremental', None) is None:
        ctx.incremental = Environments(ctx)
    return ctx.incremental.build()


def _sync(ctx, runner, env, folder, pin=None, profile=None):
    args = dict(name=env, tarball_dir=str(folder), state_dir=str(ctx.state_dir(runner)), docker_host=runner.docker_host,
                timeout=1800)
    if pin is not None:
        args['pin'] = pin
    return measure.run_module('image_sync', args, profile=profile)


def _holds(runner, tarball, repository):
    """Put tarball on runner as a sync leaves it (loaded, tagged :<timestamp>), unless it is there already."""
    if not runner.holds(tarball.sidecar):
        runner.load(tarball.path)
    runner.tag_image_of(tarball.sidecar, repository, tarball.timestamp)


def _sent_note(what, limit=None, row=None):
    def check(sample):
        result = sample.result or {}
        if 'bytes_sent' not in result:
            return None
        if limit is not None and result['bytes_sent'] > limit and row is not None:
            failure = 'sent %d bytes > %d' % (result['bytes_sent'], limit)
            if failure not in row().condition_failures:
                row().condition_failures.append(failure)
        return '%s: action %s, %d layer(s) sent, bytes_sent %d (%s)' % (
            what, result.get('action'), result.get('layers_sent') or 0, result['bytes_sent'], _mb(result['bytes_sent']))
    return check


def small_change(ctx, runner):
    """8a: the update sync of a 5 MiB change; 8b: the rollback to the previous version. Two tables."""
    require(module='image_sync')
    envs = environments(ctx)
    v1, v2, flat_v2 = envs.v1, envs.v2, envs.flat_v2
    flat_repository = 'kohakuriver/' + envs.flat_env

    def previous_version():
        runner.remove_image_of(v2.sidecar)
        runner.remove_image_of(flat_v2.sidecar)
        _holds(runner, v1, envs.repository)
        runner.tag_image_of(v1.sidecar, envs.repository, 'base')
        # The flat world's previous version shares only the base with its successor, as v1 does: hold v1 there too.
        runner.tag_image_of(v1.sidecar, flat_repository, 'base')

    def loaded(tarball, what, limit=None, row=None):
        note = _sent_note(what, limit, row)

        def check(sample):
            expect(runner.holds(tarball.sidecar), '%s did not put %s on %s' % (what, tarball.image_id, runner.name))
            return note(sample)
        return check

    update = None
    thin = _thin_archive(ctx, runner, v1, v2, 'inc-thin-v2')
    contenders = [
        Contender(IMAGE_SYNC_MODULE, lambda: _sync(ctx, runner, envs.env, envs.chain_dir), previous_version,
                  loaded(v2, 'chain', envs.change_bytes + MIB, lambda: update.row(IMAGE_SYNC_MODULE)),
                  profile=lambda path: (_sync(ctx, runner, envs.env, envs.chain_dir, profile=path), 'the image_sync module')),
        Contender(DOCKER_LOAD, lambda: measure.run_shell(docker(runner, 'load', '-i', v2.path)), previous_version,
                  loaded(v2, 'docker load'), rss_label=' (CLI only)'),
        Contender(FLAT_SYNC, lambda: _sync(ctx, runner, envs.flat_env, envs.flat_dir), previous_version,
                  loaded(flat_v2, 'flat')),
        Contender(THIN_LOAD, lambda: measure.run_shell(docker(runner, 'load', '-i', thin)), previous_version,
                  loaded(v2, 'docker load of the thin archive'), rss_label=' (CLI only)'),
        Contender(PING_MODULE, ping_module),
    ]
    update = new_table('8-update-' + runner.name, '8a. Small change to a large environment, update sync: %s' % runner.label,
                       DOCKER_LOAD, contenders,
                       [Target(IMAGE_SYNC_MODULE, 0.10, 'sends <= the changed bytes + 1 MiB')] if ctx.size == 'full' else [])
    _forget(runner, envs)
    try:
        alternate(ctx, update, contenders, cached=[v2.path, flat_v2.path])
        profile_missed(ctx, update, contenders, [v2.path])
    finally:
        _forget(runner, envs)
    update.notes.append('Environment layer %s of random data over a %s base, then a change of %s: v1 %s (%d layers), '
                        'v2 %s (%d layers) chained; the flat v2 %s (%d layers) is the 0.1 shape. The runner holds v1.'
                        % (_mb(envs.env_bytes), _mb(ctx.images.base_bytes), _mb(envs.change_bytes), _mb(v1.sidecar.size),
                           len(v1.sidecar.layers), _mb(v2.sidecar.size), len(v2.sidecar.layers), _mb(flat_v2.sidecar.size),
                           len(flat_v2.sidecar.layers)))
    update.notes.append('The last two rows are the floor of the module\'s time: the daemon\'s own share of the thin load '
                        '(the CLI sending the same %s archive from a file, CLI start-up included) and the start-up, '
                        'Ansible import and exit of a module that does nothing (ping).' % _mb(os.path.getsize(thin)))
    if ctx.size != 'full':
        update.notes.append('At --size small the fixed costs (Python start-up, API calls) dominate: the issue\'s '
                            'targets apply to the full size.')
    update.notes.append('Packaging (tarball module, one run each, not alternated): %s.' % '; '.join(
        '%s %.1f s' % (name, made['seconds']) for name, made in sorted(envs.packaged.items())))
    return [update, rollback(ctx, runner, envs)]


def rollback(ctx, runner, envs):
    v1, v2 = envs.v1, envs.v2
    pin = os.path.basename(v1.path)
    extra = {'krbench_env': envs.env, 'krbench_pin': pin, 'kohakuriver_tarball_dir': str(envs.chain_dir)}

    def on_newest():
        _holds(runner, v1, envs.repository)
        _holds(runner, v2, envs.repository)
        runner.tag_image_of(v2.sidecar, envs.repository, 'base')

    table = None

    def rolled_back(what):
        def check(sample):
            expect(runner.image_id(envs.repository + ':base') == runner.id_of(v1.sidecar), '%s did not make v1 :base' % what)
            result = sample.result or {}
            if 'bytes_sent' in result:
                failure = 'action %s, sent %d bytes' % (result.get('action'), result['bytes_sent'])
                if (result['bytes_sent'] or result.get('action') != 'tag') and failure not in table.row(what).condition_failures:
                    table.row(what).condition_failures.append(failure)
                return 'action %s, bytes_sent %d' % (result['action'], result['bytes_sent'])
            return 'changed=%d' % measure.changed_hosts(sample)
        return check

    contenders = [
        Contender(PING_PLAYBOOK, lambda: _playbook(ctx, 'ping.yml', runner.name), on_newest, lambda sample: None,
                  rss_label=' (whole playbook)'),
        Contender(ROLLBACK_PLAYBOOK, lambda: _playbook(ctx, 'image_sync_pin.yml', runner.name, extra), on_newest,
                  rolled_back(ROLLBACK_PLAYBOOK), rss_label=' (whole playbook)'),
        Contender(ROLLBACK_COLLECTION, lambda: _playbook(ctx, 'kohakuriver.docker.rollback', runner.name,
                                                         {'kr_env': envs.env, 'kr_pin': pin,
                                                          'kohakuriver_tarball_dir': str(envs.chain_dir)}),
                  on_newest, rolled_back(ROLLBACK_COLLECTION), rss_label=' (whole playbook)'),
        Contender(ROLLBACK_MODULE, lambda: _sync(ctx, runner, envs.env, envs.chain_dir, pin=pin), on_newest,
                  rolled_back(ROLLBACK_MODULE)),
    ]
    table = new_table('8-rollback-' + runner.name, '8b. Rollback to the previous version, held by the runner: %s'
                      % runner.label, PING_PLAYBOOK, contenders, [Target(ROLLBACK_PLAYBOOK, 1.20, '0 bytes sent')])
    if ctx.size != 'full':
        table.targets = []
    try:
        alternate(ctx, table, contenders, warmup=True)
    finally:
        _forget(runner, envs)
    table.notes.append('The runner holds v1 and v2 (:base is v2); every contender ran once untimed first. The one-task '
                       'playbook is the ping playbook with image_sync (pin: %s) in place of ping; the collection\'s '
                       'rollback playbook adds its checks and report (4 tasks).' % pin)
    return table


def _forget(runner, envs):
    """Remove what scenario 8 put on the runner: the images of both environments (v1, v2, flat v2)."""
    for tarball in (envs.v2, envs.flat_v2, envs.v1):
        runner.remove_image_of(tarball.sidecar)
