"""Scenario 9 (issue 16): first and update sync of N runner daemons from the share, from the registry and through a
pull-through cache, side by side, with the bytes the origin registry served; the update on one runner (the image_sync
module against `docker pull`); and an up-to-date sync from the registry against a ping playbook.

The runners are scenario 5's private test bed (bench/krbench/extra_runners.py), which has its own registries: the
origin (plain) and a pull-through cache in front of it, both reachable inside every runner's network namespace
(tests/testbed/README.md, "Registries"). v2, the newest version, is published the collection's way: the tarball
module with `registry` pushes `<origin>/kohakuriver/<env>:<timestamp>` and `:latest` and records the digest in the
sidecar, on a share of scenario 9's own (Pushed.publish), which the image_sync rows sync from. v1 (which only the
update tables need on the runners beforehand) is pushed with the SDK as `:v1`. Every row pulls by digest, never by
tag. Bytes served by the origin come from its log (tests/testbed/registry_log.py).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys

from docker.errors import NotFound

from krbench import measure
from krbench.report import Target
from krbench.scenarios import (
    PARALLEL_LOAD, PING_MODULE, PING_PLAYBOOK, SYNC_PLAYBOOK, Contender, _has, _install, _mb, _on_all, _playbook,
    _reset_empty, _tag_current, alternate, docker, expect, new_table, ping_module, profile_missed, require,
)

sys.path.insert(0, str(measure.REPO / 'tests'))
from testbed.registry_log import bytes_served, log_offset  # noqa: E402 pylint: disable=wrong-import-position,import-error

PULL_ORIGIN = 'docker pull by digest from the registry, every runner at once'
PULL_CACHE = 'docker pull by digest through the pull-through cache, every runner at once'
PULL_CACHE_STAGGERED = 'docker pull by digest through the cache, one runner first, then the others at once'
PULL_ONE = 'docker pull by digest from the registry'
SYNC_SHARE = SYNC_PLAYBOOK + ' from the share'
SYNC_REGISTRY = SYNC_PLAYBOOK + ' from the registry'
SYNC_CACHE = SYNC_PLAYBOOK + ' through the pull-through cache'
IMAGE_SYNC_REGISTRY = 'image_sync module from the registry'
IMAGE_SYNC_ONE = IMAGE_SYNC_REGISTRY + ', one runner'


class Pushed:
    """v1 and v2 of the environment in the origin registry: repository, manifest digests, and the share whose newest
    sidecar records v2's push."""

    def __init__(self, ctx, registries):
        self.ctx = ctx
        self.registries = registries
        self.repository = '%s/kohakuriver/%s' % (registries['plain'], ctx.images.env)
        self.path = self.repository.split('/', 1)[1]
        self.share = ctx.work / 'registry-share' / 'kohakuriver-containers'
        self.digests = {}
        self.tags = []
        self.published_by = 'the tarball module with registry'

    def push(self):
        self._push_v1()
        self._publish_v2()

    def _push_v1(self):
        if not self.ctx.host.has_image(self.ctx.v1.image_id):
            self.ctx.host.load(self.ctx.v1.path)
        self.tags.append('v1')
        self.digests['v1'] = self._push(self.ctx.v1, 'v1')

    def _publish_v2(self):
        """The tarball module with registry, on a share holding hard links of the run's v1 and v2 and copies of their
        sidecars (the run's own stay as they are): v2 is its newest tarball and current, so the module packages
        nothing, pushes v2's image and records the digest in v2's sidecar there."""
        host, v2 = self.ctx.host, self.ctx.v2
        self.share.mkdir(parents=True, exist_ok=True)
        for tarball in (self.ctx.v1, v2):
            link = self.share / os.path.basename(tarball.path)
            if not link.exists():
                os.link(tarball.path, link)
            shutil.copyfile(tarball.path + '.json', str(link) + '.json')
        if not host.has_image(v2.image_id):
            host.load(v2.path)
        result = measure.run_module('tarball', dict(name=self.ctx.images.env, tarball_dir=str(self.share), keep=3,
                                                    registry=dict(url=self.registries['plain']),
                                                    docker_host=host.docker_host, timeout=1800)).result
        self.tags += [str(v2.timestamp), 'latest']
        published = result['tarball']['path']
        if os.path.basename(published) != os.path.basename(v2.path):
            # An earlier scenario (1) packaged the container again, so it is no longer v2's: the module made a new
            # tarball. Drop it and record what the module would have recorded for v2 (pushed with the SDK).
            for leftover in (published, published + '.json'):
                if os.path.exists(leftover):
                    os.unlink(leftover)
            self.digests['v2'] = self._push(v2, str(v2.timestamp))
            self._record(v2, dict(repository=self.repository, tag=str(v2.timestamp), digest=self.digests['v2']))
            self.published_by = ('the SDK, the field written as the tarball module writes it (scenario 1 had packaged the '
                                 'container again, so the module made a new tarball)')
            return
        field = result.get('registry') or {}
        expect(field.get('repository') == self.repository and field.get('digest'),
               'the tarball module recorded registry %r, not a push to %s' % (field, self.repository))
        self.digests['v2'] = field['digest']

    def _push(self, tarball, tag):
        host = self.ctx.host
        host.tag(tarball.image_id, self.repository, tag)
        digest = None
        for message in host.client.api.push(self.repository, tag, stream=True, decode=True):
            if message.get('error'):
                raise measure.RunFailed('pushing %s:%s failed: %s' % (self.repository, tag, message['error']))
            digest = (message.get('aux') or {}).get('Digest') or digest
        expect(digest, 'the push of %s:%s reported no digest' % (self.repository, tag))
        return digest

    def _record(self, tarball, field):
        path = self.share / (os.path.basename(tarball.path) + '.json')
        sidecar = json.loads(path.read_text(encoding='utf-8'))
        sidecar['registry'] = field
        path.write_text(json.dumps(sidecar, indent=2, sort_keys=True) + '\n', encoding='utf-8')

    def pulled(self, versions=('v1', 'v2')):
        """Every reference a runner may have pulled of these versions, from the origin or through the cache."""
        return [self.reference(version, via) for version in versions for via in ('plain', 'cache')]

    def forget_pulls(self, runner, versions=('v1', 'v2')):
        for reference in self.pulled(versions):
            runner.remove_image(reference)

    def forget_image(self, runner, version):
        """Remove the image a runner pulled of version by its ID, with every name it has (:base too): on the containerd
        image store its ID is the pushed manifest's digest, which no sidecar of the share names."""
        for reference in self.pulled([version]):
            image_id = runner.image_id(reference)
            if image_id:
                runner.remove_image(image_id)

    def reference(self, version, via='plain'):
        repository = self.repository.replace(self.registries['plain'], self.registries[via], 1)
        return '%s@%s' % (repository, self.digests[version])

    def sync_vars(self, sync_vars, via):
        """sync.yml's variables to sync from the registry (the origin, or the cache as a rack's runners name it)."""
        return dict(sync_vars, kohakuriver_registry={'url': self.registries[via]}, kohakuriver_registry_source='registry',
                    kohakuriver_tarball_dir=str(self.share))

    def module_args(self, runner, via='plain'):
        return dict(name=self.ctx.images.env, tarball_dir=str(self.share), state_dir=str(self.ctx.state_dir(runner)),
                    docker_host=runner.docker_host, registry={'url': self.registries[via]}, source='registry', timeout=1800)

    def base_digests(self, runner):
        """The RepoDigests of kohakuriver/<env>:base on runner, None without it."""
        try:
            return runner.client.api.inspect_image(self.ctx.images.repository + ':base').get('RepoDigests') or []
        except NotFound:
            return None

    def holds_as_base(self, runner, version):
        """Is kohakuriver/<env>:base on runner the image pulled by version's digest (its RepoDigests, any registry)?"""
        suffix = '/%s@%s' % (self.path, self.digests[version])
        return any(entry.endswith(suffix) for entry in self.base_digests(runner) or [])

    def current(self, runner, version):
        """runner as a sync from the registry leaves it: version pulled by digest from the origin, tagged :base."""
        reference = self.reference(version)
        if not runner.has_image(reference):
            measure.run_shell(docker(runner, 'pull', reference))
        runner.tag(runner.image_id(reference), self.ctx.images.repository, 'base')

    def remove_from_host(self):
        for tag in self.tags:
            self.ctx.host.remove_image('%s:%s' % (self.repository, tag))


def _pull(runner, reference, retries):
    """docker pull, tried again (at most twice, each noted in the file retries) when it fails: distribution 2.8's
    pull-through cache can answer 500 to a runner when several miss one blob at once. The last try shows its error."""
    pull = docker(runner, 'pull', reference)
    return ('{ pulled=; for attempt in 1 2; do if %s >/dev/null 2>&1; then pulled=1; break; fi; echo "$attempt" >> %s; '
            'done; [ -n "$pulled" ] || %s >/dev/null; }' % (pull, shlex.quote(str(retries)), pull))


def _parallel_pull(runners, reference, retries):
    pulls = ' '.join('%s & pids+=($!);' % _pull(runner, reference, retries) for runner in runners)
    return 'pids=(); %s for pid in "${pids[@]}"; do wait "$pid"; done' % pulls


def _staggered_pull(runners, reference, retries):
    """One runner fills the cache, then the others pull from it at once: distribution 2.8's proxy does not merge
    concurrent misses of one blob, each is fetched from the origin again."""
    return '%s; %s' % (_pull(runners[0], reference, retries), _parallel_pull(runners[1:], reference, retries))


def _empty_cache(registries):
    """The pull-through cache forgets everything (its storage goes; distribution finds blobs by their files)."""
    shutil.rmtree(os.path.join(registries['cache_storage'], 'docker'), ignore_errors=True)


def _forget_in_cache(registries, digests):
    """The cache forgets these blobs and manifests (v2's new ones), keeping what v1 brought."""
    for digest in digests:
        hexa = digest.split(':', 1)[1]
        shutil.rmtree(os.path.join(registries['cache_storage'], 'docker', 'registry', 'v2', 'blobs', 'sha256', hexa[:2], hexa),
                      ignore_errors=True)


class _OriginBytes:
    """Notes each run with the bytes the origin served it (blobs of the environment's repository)."""

    def __init__(self, registries, repository):
        self.log = registries['origin_log']
        self.repository = repository.split('/', 1)[1]
        self.offset = 0

    def mark(self):
        self.offset = log_offset(self.log)

    def served(self):
        return bytes_served(self.log, self.offset, self.repository)


def registry_sync(ctx, runners, registries, sync_vars):
    require(module='image_sync', playbook='sync')
    pushed = Pushed(ctx, registries)
    origin = _OriginBytes(registries, pushed.repository)
    try:
        pushed.push()
        tables = [_first_sync(ctx, runners, registries, pushed, origin, sync_vars),
                  _update_sync(ctx, runners, registries, pushed, origin, sync_vars)]
        tables.append(_up_to_date(ctx, runners, pushed, sync_vars))
        tables += [_update_one(ctx, runner, pushed, origin) for runner in runners[:2]]
    finally:
        _on_all(runners, lambda runner: _empty(ctx, runner, pushed))
        pushed.remove_from_host()
    notes = ('Runners: %s, on one machine (2 cores, one disk), so this measures contention as much as distribution. '
             'Registry rows pull `%s` by digest; bytes served = what the origin wrote for the environment\'s blobs '
             '(its log). The image_sync rows sync from a share whose newest sidecar (v2\'s) records its push to %s, '
             'made by %s; through the cache they give the cache\'s url.'
             % (', '.join(runner.label for runner in runners), pushed.repository, registries['plain'], pushed.published_by))
    for table in tables:
        table.notes.append(notes)
    return tables


def _pulled(runners, reference, what, retries):
    def check(sample):
        del sample
        missing = [runner.name for runner in runners if not runner.has_image(reference)]
        expect(not missing, '%s left %s without %s' % (what, ', '.join(missing), reference))
        failed = _lines(retries)
        return '%d failed pull(s) tried again' % failed if failed else None
    return check


def _lines(path):
    try:
        with open(path, encoding='utf-8') as counted:
            return sum(1 for _line in counted)
    except FileNotFoundError:
        return 0


def _with_origin_bytes(origin, prepare, check):
    def prepared():
        prepare()
        origin.mark()

    def checked(sample):
        note = check(sample)
        served = 'origin served %s' % _mb(origin.served())
        return '%s; %s' % (note, served) if note else served
    return prepared, checked


def _forgetting(retries, prepare):
    def prepared():
        prepare()
        retries.unlink(missing_ok=True)
    return prepared


def _shared(ctx, runners, tarball, what):
    def check(sample):
        missing = [runner.name for runner in runners if not _has(runner, tarball)]
        expect(not missing, '%s left %s without the image' % (what, ', '.join(missing)))
        return 'changed on %d of %d runners' % (measure.changed_hosts(sample), len(runners))
    return check


def _synced(runners, pushed, version, what, changed, row_of):
    """Check of a sync from the registry: every runner's :base is version pulled by digest, changed on `changed` of
    them (else a condition failure of the row)."""
    def check(sample):
        wrong = ['%s (RepoDigests %s)' % (runner.name, pushed.base_digests(runner)) for runner in runners
                 if not pushed.holds_as_base(runner, version)]
        expect(not wrong, '%s left :base on %s, not %s' % (what, ', '.join(wrong), pushed.reference(version)))
        count = measure.changed_hosts(sample)
        _condition(row_of(what), count == changed, 'reported %d of %d runners changed' % (count, len(runners)))
        return 'changed on %d of %d runners' % (count, len(runners))
    return check


def _condition(row, met, failure):
    if not met and failure not in row.condition_failures:
        row.condition_failures.append(failure)


def _sync_run(ctx, runners, sync_vars):
    names = ','.join(runner.name for runner in runners)
    return lambda: _playbook(ctx, 'kohakuriver.docker.sync', names, sync_vars, len(runners))


def _contenders(ctx, runners, registries, pushed, origin, version, prepares, sync_vars, row_of):
    """The contenders of a table: pull from the origin, pull through the cache (all at once, and one runner first),
    sync.yml from the registry and through the cache, sync.yml from the share."""
    tarball = ctx.v2 if version == 'v2' else ctx.v1
    rows = []
    for name, via, prepare, pull in ((PULL_ORIGIN, 'plain', prepares['origin'], _parallel_pull),
                                     (PULL_CACHE, 'cache', prepares['cache'], _parallel_pull),
                                     (PULL_CACHE_STAGGERED, 'cache', prepares['cache'], _staggered_pull)):
        reference = pushed.reference(version, via)
        retries = ctx.work / 'pull-retries'
        run_prepare, run_check = _with_origin_bytes(origin, _forgetting(retries, prepare),
                                                    _pulled(runners, reference, name, retries))
        script = pull(runners, reference, retries)
        rows.append(Contender(name, lambda script=script: measure.run_shell(script), run_prepare, run_check, ' (largest CLI)'))
    for name, via, prepare in ((SYNC_REGISTRY, 'plain', prepares['registry']), (SYNC_CACHE, 'cache', prepares['cache'])):
        run_prepare, run_check = _with_origin_bytes(origin, prepare, _synced(runners, pushed, version, name, len(runners),
                                                                             row_of))
        rows.append(Contender(name, _sync_run(ctx, runners, pushed.sync_vars(sync_vars, via)), run_prepare, run_check,
                              ' (whole playbook)'))
    if ctx.size != 'small':  # the smoke run (scripts/bench-smoke) has scenario 5 run the same sync.yml already
        run_prepare, run_check = _with_origin_bytes(origin, prepares['share'], _shared(ctx, runners, tarball, SYNC_SHARE))
        rows.append(Contender(SYNC_SHARE, _sync_run(ctx, runners, sync_vars), run_prepare, run_check, ' (whole playbook)'))
    return rows


def _empty(ctx, runner, pushed):
    """Nothing of the environment on runner: by ID, the images pulled and those :base and the versions' tags name (the
    containerd image store does not list an image whose layers another one brought, so _reset_empty misses those);
    the references pulled by name (on that store each is an image record of its own); then every image listed."""
    pushed.forget_image(runner, 'v1')
    pushed.forget_image(runner, 'v2')
    for tag in ('base', ctx.v1.timestamp, ctx.v2.timestamp):
        image_id = runner.image_id('%s:%s' % (ctx.images.repository, tag))
        if image_id:
            runner.remove_image(image_id)
    pushed.forget_pulls(runner)
    _reset_empty(ctx, runner)


def _first_sync(ctx, runners, registries, pushed, origin, sync_vars):
    def empty_all():
        _on_all(runners, lambda runner: _empty(ctx, runner, pushed))

    def empty_all_and_cache():
        empty_all()
        _empty_cache(registries)

    table = None

    def row_of(name):  # the table is made after its contenders, before any check runs
        return table.row(name)

    prepares = {'origin': empty_all, 'cache': empty_all_and_cache, 'share': empty_all, 'registry': empty_all}
    contenders = _contenders(ctx, runners, registries, pushed, origin, 'v2', prepares, sync_vars, row_of)
    table = new_table('9-first', '9a. Registry, first sync of %d runners (forks %d)' % (len(runners), len(runners)),
                      PULL_ORIGIN, contenders)
    alternate(ctx, table, contenders, cached=[ctx.v2.path])
    table.notes.append('Before every run each runner holds none of the environment\'s layers; the cache rows start '
                       'from an empty cache. %s moves the same %s tarball on every runner (%s in scenario 5).'
                       % (SYNC_SHARE, _mb(ctx.v2.sidecar.size), PARALLEL_LOAD))
    return table


def _pulled_previous(ctx, pushed, runner):
    """v1 pulled from the registry (so that the daemon knows its layers' registry digests) and :base, as a sync from
    the registry leaves it; v2 not there."""
    pushed.forget_image(runner, 'v2')
    pushed.forget_pulls(runner, ['v2'])
    runner.remove_image_of(ctx.v2.sidecar)
    pushed.current(runner, 'v1')


def _update_sync(ctx, runners, registries, pushed, origin, sync_vars):
    v1, v2 = ctx.v1, ctx.v2

    def loaded_previous(runner):
        """v1 loaded from the share and current, as a sync leaves it; v2 not there. Without the pulled references:
        on the containerd image store `docker load` of an image pulled before names it by another manifest."""
        pushed.forget_image(runner, 'v2')
        pushed.forget_pulls(runner)
        runner.remove_image_of(v2.sidecar)
        if not _has(runner, v1):
            _install(ctx, runner, v1)
        _tag_current(ctx, runner, v1)

    def all_previous():
        _on_all(runners, lambda runner: _pulled_previous(ctx, pushed, runner))

    v2_only = [pushed.digests['v2']] + _new_blobs(pushed)

    def all_previous_cache_without_v2():
        all_previous()
        _forget_in_cache(registries, v2_only)

    _on_all(runners, lambda runner: _empty(ctx, runner, pushed))
    _empty_cache(registries)
    # v1 through the cache once, so that the cache holds what the runners have (a rack's cache after the last sync)
    measure.run_shell(docker(runners[0], 'pull', pushed.reference('v1', 'cache')))
    runners[0].remove_image(pushed.reference('v1', 'cache'))
    table = None

    def row_of(name):  # the table is made after its contenders, before any check runs
        return table.row(name)

    prepares = {'origin': all_previous, 'cache': all_previous_cache_without_v2, 'registry': all_previous,
                'share': lambda: _on_all(runners, loaded_previous)}
    contenders = _contenders(ctx, runners, registries, pushed, origin, 'v2', prepares, sync_vars, row_of)
    table = new_table('9-update', '9b. Registry, update sync of %d runners: they hold v1, v2 is new' % len(runners),
                      PULL_ORIGIN, contenders, [Target(SYNC_REGISTRY, 1.10, 'changed on every runner')]
                      if ctx.size == 'full' else [])
    alternate(ctx, table, contenders, cached=[v2.path])
    table.notes.append('Before every run each runner holds v1 and not v2: pulled from the registry (and :base) for the '
                       'registry rows, loaded from the share (and current) for the share row; the cache holds v1 and '
                       'none of v2\'s new blobs. v2 shares v1\'s base layer. The target (issue 16: update sync from '
                       'the registry <= 1.10 x a plain docker pull of the same image) is read here per runner as the '
                       'whole playbook on all six against the same pull on all six at once; 9d has it on one runner, '
                       'the module against the pull.')
    return table


def _update_one(ctx, runner, pushed, origin):
    """9d: the update on one runner, the image_sync module from the registry against docker pull of the same digest,
    as scenario 3 times the module against docker load -i."""
    new_layers = len(_new_blobs(pushed)) - 1  # v2's new blobs: its config and its new layers
    reference = pushed.reference('v2')
    table = None

    def previous():
        _pulled_previous(ctx, pushed, runner)

    def pulled(sample):
        del sample
        expect(runner.has_image(reference), '%s left %s without %s' % (PULL_ONE, runner.name, reference))

    def synced(sample):
        expect(pushed.holds_as_base(runner, 'v2'), '%s left :base on %s other than %s' % (IMAGE_SYNC_REGISTRY,
                                                                                          runner.name, reference))
        result = sample.result
        _condition(table.row(IMAGE_SYNC_REGISTRY), result.get('layers_pulled') == new_layers,
                   'pulled %s layers, %d are new' % (result.get('layers_pulled'), new_layers))
        return 'action %s, %s layer(s) pulled, %s held, %s' % (result.get('action'), result.get('layers_pulled'),
                                                               result.get('layers_held'), _mb(result.get('bytes_pulled') or 0))

    def module_run(profile=None):
        return measure.run_module('image_sync', pushed.module_args(runner), profile=profile)

    contenders = []
    for name, run, check, rss_label, profile in (
            (PULL_ONE, lambda: measure.run_shell(docker(runner, 'pull', reference)), pulled, ' (CLI only)', None),
            (IMAGE_SYNC_REGISTRY, module_run, synced, '', lambda path: (module_run(path), 'the image_sync module'))):
        run_prepare, run_check = _with_origin_bytes(origin, previous, check)
        contenders.append(Contender(name, run, run_prepare, run_check, rss_label, profile))
    contenders.append(Contender(PING_MODULE, ping_module))
    table = new_table('9-update-' + runner.name, '9d. Registry, update sync of one runner: %s' % runner.label, PULL_ONE,
                      contenders, [Target(IMAGE_SYNC_REGISTRY, 1.10, 'pulls only the new layers')]
                      if ctx.size == 'full' else [])
    try:
        alternate(ctx, table, contenders)
        profile_missed(ctx, table, contenders)
    finally:
        _empty(ctx, runner, pushed)
    table.notes.append('The runner holds v1, pulled from the origin and tagged :base (as a sync from the registry '
                       'leaves it); v2 (%d new layer(s)) is pulled from the origin by digest. The other runners are '
                       'idle. The last row is the floor of any module\'s own time (Python\'s start-up, Ansible\'s import'
                       ' and exit): the pull plus that floor is the least an Ansible module that pulls can take.'
                       % new_layers)
    if ctx.size != 'full':
        table.notes.append('At --size small the fixed costs (Python start-up, API calls) dominate: the issue\'s '
                           'targets apply to the full size.')
    return table


def _up_to_date(ctx, runners, pushed, sync_vars):
    """9c: every runner holds v2 pulled by digest as :base; sync.yml from the registry against the ping playbook."""
    names = ','.join(runner.name for runner in runners)
    table = None

    def current_all():
        _on_all(runners, lambda runner: pushed.current(runner, 'v2'))

    def pinged(sample):
        return 'changed on %d of %d runners' % (measure.changed_hosts(sample), len(runners))

    def module_run(profile=None):
        return measure.run_module('image_sync', pushed.module_args(runners[0]), profile=profile)

    def row_of(name):  # the table is made after its contenders, before any check runs
        return table.row(name)

    def module_unchanged(sample):
        expect(sample.result.get('action') == 'none' and not sample.result.get('changed'),
               '%s found work to do on an up-to-date runner: %s' % (IMAGE_SYNC_ONE, sample.result.get('action')))
        return 'unchanged'

    contenders = [Contender(PING_PLAYBOOK, lambda: _playbook(ctx, 'ping.yml', names, forks=len(runners)), current_all,
                            pinged, ' (whole playbook)')]
    for name, via in ((SYNC_REGISTRY, 'plain'), (SYNC_CACHE, 'cache')):
        contenders.append(Contender(name, _sync_run(ctx, runners, pushed.sync_vars(sync_vars, via)), current_all,
                                    _synced(runners, pushed, 'v2', name, 0, row_of),
                                    ' (whole playbook)', lambda path: (module_run(path), 'the image_sync module')))
    contenders.append(Contender(IMAGE_SYNC_ONE, module_run, current_all, module_unchanged))
    table = new_table('9-current', '9c. Registry, up-to-date sync of %d runners (forks %d)' % (len(runners), len(runners)),
                      PING_PLAYBOOK, contenders, [Target(SYNC_REGISTRY, 1.15, 'reports unchanged')])
    alternate(ctx, table, contenders, warmup=True)
    profile_missed(ctx, table, contenders)
    table.notes.append('Every runner holds v2 pulled by digest from the origin as :base; each contender ran once untimed '
                       'first. Up to date is decided from the share\'s sidecar and one image inspect, with no registry '
                       'request, so the cache row asks the cache nothing either. The last row is the module alone on '
                       '%s, as one process: its share of each runner\'s time.' % runners[0].name)
    return table


def _new_blobs(pushed):
    """The digests of v2's config and layers that v1 does not have, from the origin's manifests."""
    import requests  # pylint: disable=import-outside-toplevel
    accept = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json'
    address, repository = pushed.repository.split('/', 1)

    def blobs(version):
        answer = requests.get('http://%s/v2/%s/manifests/%s' % (address, repository, pushed.digests[version]),
                              headers={'Accept': accept}, timeout=30)
        answer.raise_for_status()
        manifest = answer.json()
        return {manifest['config']['digest']} | {layer['digest'] for layer in manifest['layers']}
    return sorted(blobs('v2') - blobs('v1'))
