"""Scenario 9 (issue 16): first and update sync of N runner daemons from the share, from the registry and through a
pull-through cache, side by side, with the bytes the origin registry served.

The runners are scenario 5's private test bed (bench/krbench/extra_runners.py), which has its own registries: the
origin (plain) and a pull-through cache in front of it, both reachable inside every runner's network namespace
(tests/testbed/README.md, "Registries"). The Host pushes v1 and v2 of the benchmark environment to the origin as
`<origin>/kohakuriver/<env>:v1|v2` (the repository the collection's registry publishing uses); the registry rows
pull by digest, never by tag. Bytes served by the origin come from its log (tests/testbed/registry_log.py).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys

from krbench import measure
from krbench.report import Row, Table
from krbench.scenarios import (
    PARALLEL_LOAD, SYNC_PLAYBOOK, Contender, _has, _install, _mb, _on_all, _playbook, _reset_empty, _tag_current, alternate,
    docker, expect, require,
)

sys.path.insert(0, str(measure.REPO / 'tests'))
from testbed.registry_log import bytes_served, log_offset  # noqa: E402 pylint: disable=wrong-import-position,import-error

PULL_ORIGIN = 'docker pull by digest from the registry, every runner at once'
PULL_CACHE = 'docker pull by digest through the pull-through cache, every runner at once'
PULL_CACHE_STAGGERED = 'docker pull by digest through the cache, one runner first, then the others at once'
SYNC_SHARE = SYNC_PLAYBOOK + ' from the share'


class Pushed:
    """v1 and v2 of the environment in the origin registry: repository and manifest digests."""

    def __init__(self, ctx, registries):
        self.ctx = ctx
        self.registries = registries
        self.repository = '%s/kohakuriver/%s' % (registries['plain'], ctx.images.env)
        self.digests = {}

    def push(self):
        host = self.ctx.host
        for name, tarball in (('v1', self.ctx.v1), ('v2', self.ctx.v2)):
            if not host.has_image(tarball.image_id):
                host.load(tarball.path)
            host.tag(tarball.image_id, self.repository, name)
            digest = None
            for message in host.client.api.push(self.repository, name, stream=True, decode=True):
                if message.get('error'):
                    raise measure.RunFailed('pushing %s:%s failed: %s' % (self.repository, name, message['error']))
                digest = (message.get('aux') or {}).get('Digest') or digest
            expect(digest, 'the push of %s:%s reported no digest' % (self.repository, name))
            self.digests[name] = digest

    def pulled(self, versions=('v1', 'v2')):
        """Every reference a runner may have pulled of these versions, from the origin or through the cache."""
        return [self.reference(version, via) for version in versions for via in ('plain', 'cache')]

    def forget_pulls(self, runner, versions=('v1', 'v2')):
        for reference in self.pulled(versions):
            runner.remove_image(reference)

    def reference(self, version, via='plain'):
        repository = self.repository.replace(self.registries['plain'], self.registries[via], 1)
        return '%s@%s' % (repository, self.digests[version])

    def remove_from_host(self):
        for name in self.digests or ('v1', 'v2'):
            self.ctx.host.remove_image('%s:%s' % (self.repository, name))


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
    names = ','.join(runner.name for runner in runners)
    forks = len(runners)
    try:
        pushed.push()
        first = _first_sync(ctx, runners, registries, pushed, origin, names, forks, sync_vars)
        update = _update_sync(ctx, runners, registries, pushed, origin, names, forks, sync_vars)
    finally:
        _on_all(runners, lambda runner: _empty(ctx, runner, pushed))
        pushed.remove_from_host()
    notes = ('Runners: %s, on one machine (2 cores, one disk), so this measures contention as much as distribution. '
             'Registry rows pull `%s` by digest; bytes served = what the origin wrote for the environment\'s blobs '
             '(its log). %s' % (', '.join(runner.label for runner in runners), pushed.repository, _registry_source_note()))
    for table in (first, update):
        table.notes.append(notes)
    return [first, update]


def _registry_source_note():
    """image_sync from the registry is the row this scenario waits for (regsync, issue 16)."""
    module = measure.COLLECTION.root / 'plugins' / 'modules' / 'image_sync.py'
    if module.exists() and '    registry:' in module.read_text(encoding='utf-8'):
        return ('The measured image_sync has a registry option, but its row is not wired here yet: add it to '
                '_contenders (bench/krbench/registry_sync.py) with tarballs published to the origin.')
    return 'image_sync with the registry as its source is not measured (the measured image_sync has no registry option).'


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


def _contenders(ctx, runners, registries, pushed, origin, version, prepares, sync_run):
    """The contenders of a table: pull from the origin, pull through the cache (all at once, and one runner first),
    sync.yml from the share."""
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
    if ctx.size != 'small':  # the smoke run (scripts/bench-smoke) has scenario 5 run the same sync.yml already
        run_prepare, run_check = _with_origin_bytes(origin, prepares['share'], _shared(ctx, runners, tarball, SYNC_SHARE))
        rows.append(Contender(SYNC_SHARE, sync_run, run_prepare, run_check, ' (whole playbook)'))
    return rows


def _table(key, title, contenders):
    return Table(key, title, PULL_ORIGIN, [Row(contender.name, rss_label=contender.rss_label) for contender in contenders], [])


def _empty(ctx, runner, pushed):
    """Nothing of the environment on runner: the references pulled by name first (on the containerd image store each
    is an image record of its own), then every image of the environment."""
    pushed.forget_pulls(runner)
    _reset_empty(ctx, runner)


def _first_sync(ctx, runners, registries, pushed, origin, names, forks, sync_vars):
    def empty_all():
        _on_all(runners, lambda runner: _empty(ctx, runner, pushed))

    def empty_all_and_cache():
        empty_all()
        _empty_cache(registries)

    prepares = {'origin': empty_all, 'cache': empty_all_and_cache, 'share': empty_all}
    contenders = _contenders(ctx, runners, registries, pushed, origin, 'v2', prepares,
                             lambda: _playbook(ctx, 'kohakuriver.docker.sync', names, sync_vars, forks))
    table = _table('9-first', '9a. Registry, first sync of %d runners (forks %d)' % (len(runners), forks), contenders)
    alternate(ctx, table, contenders, cached=[ctx.v2.path])
    table.notes.append('Before every run each runner holds none of the environment\'s layers; the cache row starts '
                       'from an empty cache. %s moves the same %s tarball on every runner (%s in scenario 5).'
                       % (SYNC_SHARE, _mb(ctx.v2.sidecar.size), PARALLEL_LOAD))
    return table


def _update_sync(ctx, runners, registries, pushed, origin, names, forks, sync_vars):
    v1, v2 = ctx.v1, ctx.v2
    v1_pulled = pushed.reference('v1')

    def pulled_previous(runner):
        """v1 pulled from the registry (so that the daemon knows its layers' registry digests), v2 not there."""
        pushed.forget_pulls(runner, ['v2'])
        runner.remove_image_of(v2.sidecar)
        if not runner.has_image(v1_pulled):
            measure.run_shell(docker(runner, 'pull', v1_pulled))

    def loaded_previous(runner):
        """v1 loaded from the share and current, as a sync leaves it; v2 not there. Without the pulled references:
        on the containerd image store `docker load` of an image pulled before names it by another manifest."""
        pushed.forget_pulls(runner)
        runner.remove_image_of(v2.sidecar)
        if not _has(runner, v1):
            _install(ctx, runner, v1)
        _tag_current(ctx, runner, v1)

    def all_previous():
        _on_all(runners, pulled_previous)

    v2_only = [pushed.digests['v2']] + _new_blobs(pushed)

    def all_previous_cache_without_v2():
        all_previous()
        _forget_in_cache(registries, v2_only)

    _on_all(runners, lambda runner: _empty(ctx, runner, pushed))
    _empty_cache(registries)
    # v1 through the cache once, so that the cache holds what the runners have (a rack's cache after the last sync)
    measure.run_shell(docker(runners[0], 'pull', pushed.reference('v1', 'cache')))
    runners[0].remove_image(pushed.reference('v1', 'cache'))
    prepares = {'origin': all_previous, 'cache': all_previous_cache_without_v2,
                'share': lambda: _on_all(runners, loaded_previous)}
    contenders = _contenders(ctx, runners, registries, pushed, origin, 'v2', prepares,
                             lambda: _playbook(ctx, 'kohakuriver.docker.sync', names, sync_vars, forks))
    table = _table('9-update', '9b. Registry, update sync of %d runners: they hold v1, v2 is new' % len(runners), contenders)
    alternate(ctx, table, contenders, cached=[v2.path])
    table.notes.append('Before every run each runner holds v1 and not v2: pulled from the registry for the registry '
                       'rows, loaded from the share (and current) for the share row; the cache holds v1 and none of '
                       'v2\'s new blobs. v2 shares v1\'s base layer.')
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
