# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packaging an environment container into a tarball on shared storage, and deleting tarballs.

Under the environment's package lock: clean what killed runs left, choose the timestamp, commit the container
(stopped, or paused) with the base image's runtime config and the image labels (image_config.py), restart it,
stream `docker save` into a hidden file while indexing it, publish sidecar and tarball atomically, then drop
tarballs beyond `keep` and this module's superseded images.

"Unchanged" is decided from Docker facts: a trial commit whose layer diff IDs and user-visible config equal
those the newest tarball's sidecar records means the container has not changed since that tarball. Committing an
unchanged container gives the same diff IDs again (Docker's layer tars are reproducible), so the comparison is
exact; the trial image is ours and untagged, and is dropped.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import hashlib
import json
import os
import re
import signal
import socket
import threading
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.archive_indexer import ArchiveIndexer, read_member_from
from ansible_collections.kohakuriver.docker.plugins.module_utils.client import APIError, DOCKER_ERRORS, explain, inspect_or_none
from ansible_collections.kohakuriver.docker.plugins.module_utils.container import foreign_container
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import is_managed
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_config import (
    commit_config, expected_runtime_config, runtime_config,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.locks import env_lock, lock_path
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    BASE_TAG, LABEL_ENV, LABEL_TIMESTAMP, container_name, image_reference, image_repository, tarball_name,
    validate_env_name,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.savestream import stream_to_file

LOCK_PURPOSE = 'package'
SAVE_CHUNK_SIZE = 4 * 1024 * 1024
MAX_CLOCK_LEAD = 120
IMAGE_TIMEOUT = 1800
_DOCKER_TIME = re.compile(r'^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$')
_TRANSPORT_ERRORS = DOCKER_ERRORS + (OSError, ValueError)
# Errors of the daemon or the disk that a packaging step turns into a Failure naming the step (the rest are bugs).
_STEP_ERRORS = DOCKER_ERRORS + (OSError,)


class Interrupted(Failure):
    pass


def parse_mode(mode):
    """The file mode for tarballs and sidecars: octal string or int, owner-readable, never world-writable."""
    if isinstance(mode, int):
        value = mode
    else:
        text = str(mode).strip()
        if not re.match(r'^0?o?[0-7]{3,4}$', text):
            raise Failure('mode %r is not an octal file mode; give one like 0644.' % (mode,))
        value = int(text.replace('o', ''), 8)
    if value > 0o777:
        raise Failure('mode %s sets special bits; give a plain mode like 0644.' % oct(value))
    if value & 0o002:
        raise Failure('mode %s would make tarballs world-writable; give one like 0644.' % oct(value))
    if not value & 0o400:
        raise Failure('mode %s would make tarballs unreadable by their owner; give one like 0644.' % oct(value))
    return value


def parse_docker_time(text):
    """Seconds since the epoch of a Docker RFC 3339 time with nanoseconds ('2026-11-28T15:00:00.123456789Z')."""
    match = _DOCKER_TIME.match(text or '')
    if not match:
        raise Failure('Cannot read the Docker time %r.' % (text,))
    zone = match.group(3)
    moment = datetime.datetime.strptime(match.group(1), '%Y-%m-%dT%H:%M:%S')
    offset = 0 if zone == 'Z' else (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60) * (1 if zone[0] == '+' else -1)
    whole = (moment - datetime.datetime(1970, 1, 1)).total_seconds() - offset
    return whole + float('0' + (match.group(2) or '.0'))


def changes_digest(changes):
    """A digest of a container's changed paths (GET /containers/{id}/changes) for check mode's prediction."""
    entries = sorted((change['Path'], change['Kind']) for change in changes or [])
    return hashlib.sha256(json.dumps(entries).encode('utf-8')).hexdigest()


def same_content(image, sidecar, env):
    """True when an inspected image has the layers and user-visible config the sidecar records."""
    return bool(sidecar) and sidecar.get('layers') == (image.get('RootFS') or {}).get('Layers') \
        and sidecar.get('runtime_config') == runtime_config(image.get('Config'), env)


def reasons_to_package(force, newest, container, changes, env, base_config):
    """Why a new tarball is needed, from cheap facts only; empty when the newest tarball may still be current.

    changes() returns the container's changed paths; it is called only when the answer depends on them.
    base_config: the Config of the image the container was created from (what the commit takes from it).
    """
    if force:
        return ['force is set']
    if newest is None:
        return ['there is no tarball of %s yet' % env]
    sidecar = newest.sidecar
    if sidecar is None:
        return ['the newest tarball %s has no sidecar (made by KohakuRiver?)' % newest.file_name]
    reasons = []
    if (sidecar.get('source') or {}).get('container_id') != container['Id']:
        reasons.append('the container is not the one %s was made from' % newest.file_name)
    if sidecar.get('runtime_config') != expected_runtime_config(container.get('Config'), base_config, env):
        reasons.append('the container configuration differs from %s' % newest.file_name)
    try:
        if os.stat(newest.path).st_size != sidecar.get('size'):
            reasons.append('%s does not have the size its sidecar records' % newest.file_name)
    except OSError:
        reasons.append('%s disappeared' % newest.file_name)
    if not reasons and sidecar.get('container_changes') != changes_digest(changes()):
        reasons.append('files were added or deleted in the container since %s' % newest.file_name)
    return reasons


class DaemonClock(object):
    """The Docker host's clock (it stamps the image's Created), read once and followed with the local clock."""

    def __init__(self, client):
        before = time.time()
        self.info = client.info()
        system_time = self.info.get('SystemTime')
        after = time.time()
        self.offset = parse_docker_time(system_time) - (before + after) / 2 if system_time else 0.0

    def now(self):
        return time.time() + self.offset


def _container_or_fail(client, env, docker_host):
    try:
        return client.api.inspect_container(container_name(env))
    except APIError as exc:
        if getattr(exc, 'status_code', None) == 404:
            raise Failure('Environment %s has no container %s on %s; create it first with kohakuriver.docker.container.'
                          % (env, container_name(env), docker_host))
        raise


def _remove_image_quietly(client, image_id):
    try:
        client.api.remove_image(image_id)
        return True
    except _TRANSPORT_ERRORS:
        return False


class _SigtermAsFailure(object):
    """While packaging, SIGTERM raises Interrupted, so the container is restarted and temporaries removed.

    Only the first one, and none once a clean-up began (ending()): a SIGTERM must not break off a clean-up, nor
    replace the failure it cleans up after.
    """

    def __enter__(self):
        self.previous = None
        self.interrupted = False
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    def ending(self):
        self.interrupted = True

    def _raise(self, signum, frame):
        if self.interrupted:
            return
        self.interrupted = True
        raise Interrupted('Interrupted by SIGTERM; nothing was published.')

    def __exit__(self, *exc_info):
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
        return False


class _Restart(object):
    """Starting again, on a thread, a container stopped for its commit; wait() says whether it worked."""

    def __init__(self, client, container_id):
        self.problem = None
        self.thread = threading.Thread(target=self._start, args=(client, container_id), name='restart')
        self.thread.daemon = True
        self.thread.start()

    def _start(self, client, container_id):
        try:
            client.api.start(container_id)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            self.problem = explain(exc)

    def wait(self):
        """None once the container was started, else why it could not be."""
        self.thread.join()
        return self.problem


class Packaging(object):
    """One packaging run of one environment; run() returns the module result."""

    def __init__(self, client, params, check_mode=False, docker_host=None):
        self.client = client
        self.env = validate_env_name(params['name'])
        self.folder = store.tarball_folder(params['tarball_dir'])
        self.keep = params['keep']
        self.force = params['force']
        self.mode = parse_mode(params['mode'])
        self.pause = params['pause']
        self.stop_timeout = params['stop_timeout']
        self.adopt = bool(params.get('adopt'))
        self.image_timeout = params.get('image_timeout') or IMAGE_TIMEOUT
        self.check_mode = check_mode
        self.docker_host = docker_host or 'the Docker host'
        self.repository = image_repository(self.env)
        self.reference = image_reference(self.env)
        self.restart = None
        self.sigterm = None
        # What is being done and for which file, for the message of a Docker or disk error (see _failure).
        self.step = 'reading %s' % container_name(self.env)
        self.target = self.folder
        self.result = dict(changed=False, tarball=None, removed=[], cleaned=[], removed_images=[], save=None,
                           reasons=[], waited_for_lock=0.0)
        if self.keep < 1:
            raise Failure('keep is %d; keep at least 1 tarball (the new one).' % self.keep)

    def run(self):
        try:
            return self._run()
        except _STEP_ERRORS as exc:
            raise self._failure(exc)

    def _failure(self, exc):
        """A Failure naming the step, the container and the tarball, for an error of the daemon or the disk."""
        if self.result['changed']:
            return Failure('Published %s, but %s failed on %s: %s.'
                           % (self.target, self.step, self.docker_host, explain(exc).rstrip('.')), **self.result)
        return Failure('Packaging %s on %s into %s failed while %s: %s. Nothing was published.'
                       % (container_name(self.env), self.docker_host, self.target, self.step, explain(exc).rstrip('.')),
                       **self.result)

    def _as_failure(self, exc):
        """exc itself when a Failure, a Failure naming the step for a Docker or disk error, else None."""
        if isinstance(exc, Failure):
            return exc
        return self._failure(exc) if isinstance(exc, _STEP_ERRORS) else None

    def _container(self):
        """The environment container, inspected; a foreign one (no managed label) only with adopt."""
        self.step = 'reading %s' % container_name(self.env)
        container = _container_or_fail(self.client, self.env, self.docker_host)
        if not self.adopt and not is_managed((container.get('Config') or {}).get('Labels')):
            raise foreign_container(container_name(self.env), container)
        return container

    def _base_config(self, container):
        """The Config of the image the container was created from: the commit gives the image its runtime."""
        self.step = 'reading the image %s was created from' % container_name(self.env)
        try:
            return self.client.api.inspect_image(container['Image']).get('Config') or {}
        except APIError as exc:
            if getattr(exc, 'status_code', None) != 404:
                raise
        raise Failure('The image %s (%s) that %s was created from is no longer on %s, so the Entrypoint and Cmd '
                      'its image must keep are unknown; load that image again, or recreate the container.'
                      % ((container.get('Config') or {}).get('Image'), container['Image'], container_name(self.env),
                         self.docker_host))

    def _run(self):
        created = store.ensure_folder(self.folder, check_mode=self.check_mode)
        container = self._container()
        if self.check_mode:
            return self._predict(container, created)
        with _SigtermAsFailure() as self.sigterm:
            with env_lock(self.folder, self.env, purpose=LOCK_PURPOSE) as waited:
                self.result['waited_for_lock'] = round(waited, 3)
                locked_at = time.time()
                self.result['cleaned'] = store.clean_stale(self.folder, self.env, before=locked_at)
                self._restart_after_killed_run()
                return self._package_locked()

    def _before(self):
        return [tarball.file_name for tarball in store.list_tarballs(self.folder, self.env)] \
            if os.path.isdir(self.folder) else []

    def _predict(self, container, created):
        newest = None if created else store.newest_tarball(self.folder, self.env)
        reasons = reasons_to_package(self.force, newest, container, self._changes_of(container), self.env,
                                     self._base_config(container))
        before = [] if created else self._before()
        self.result.update(changed=bool(reasons), reasons=reasons, diff=dict(before=dict(tarballs=before)))
        if reasons:
            timestamp = store.choose_timestamp(DaemonClock(self.client).now(), newest.timestamp if newest else None)
            after = ([tarball_name(self.env, timestamp)] + before)[:self.keep]
            self.result['tarball'] = dict(path=os.path.join(self.folder, tarball_name(self.env, timestamp)),
                                          env=self.env, timestamp=timestamp)
        else:
            after = before
            self.result['tarball'] = self._tarball_result(newest)
        self.result['diff']['after'] = dict(tarballs=after)
        return self.result

    def _changes_of(self, container):
        return lambda: self.client.api.diff(container['Id']) or []

    def _tarball_result(self, tarball):
        sidecar = tarball.sidecar or {}
        return dict(path=tarball.path, file=tarball.file_name, env=self.env, timestamp=tarball.timestamp,
                    date=store.iso_date(tarball.timestamp), size=sidecar.get('size'), sha256=sidecar.get('sha256'),
                    image_id=sidecar.get('image_id'))

    def _restart_after_killed_run(self):
        """A run killed while the container was stopped left a marker: start the container it stopped."""
        marker = store.restart_marker_path(self.folder, self.env)
        try:
            with open(marker) as handle:
                container_id = json.load(handle).get('container_id')
        except (OSError, ValueError):
            return
        try:
            state = self.client.api.inspect_container(container_id)['State']
            if not state.get('Running'):
                self.client.api.start(container_id)
                self.result['reasons'].append('restarted the container an interrupted run had stopped')
        except APIError as exc:
            if getattr(exc, 'status_code', None) != 404:
                raise
        store.remove_quietly(marker)
        self.result['cleaned'].append(marker)

    def _package_locked(self):
        env, folder = self.env, self.folder
        before = self._before()
        self.result['diff'] = dict(before=dict(tarballs=before), after=dict(tarballs=before))
        container = self._container()
        base_config = self._base_config(container)
        newest = store.newest_tarball(folder, env)
        self.step = 'comparing %s with its newest tarball' % container_name(env)
        reasons = reasons_to_package(self.force, newest, container, self._changes_of(container), env, base_config)
        self.step = 'reading the clock of %s' % self.docker_host
        clock = DaemonClock(self.client)
        self.daemon_name = clock.info.get('Name')
        self.engine = self.client.api.version()
        timestamp = store.choose_timestamp(clock.now(), newest.timestamp if newest else None)
        lead = timestamp - clock.now()
        if lead > MAX_CLOCK_LEAD:
            raise Failure('The newest tarball %s is dated %d s ahead of the clock of %s; fix that clock or remove the '
                          'tarball.' % (newest.path, lead, self.docker_host))
        store.wait_until(timestamp, clock=clock.now)
        self.target = os.path.join(folder, tarball_name(env, timestamp))
        running = container['State'].get('Running') and not container['State'].get('Paused')
        image = None
        if not reasons:
            image = self._commit(container, base_config, timestamp, stop=False, trial=True)
            if same_content(image, newest.sidecar, env):
                _remove_image_quietly(self.client, image['Id'])
                self.result['tarball'] = self._tarball_result(newest)
                return self.result
            reasons.append('the container content changed since %s' % newest.file_name)
            if running and not self.pause:
                _remove_image_quietly(self.client, image['Id'])
                image = None
        with self._restart_awaited():
            if image is None:
                image = self._commit(container, base_config, timestamp, stop=running and not self.pause)
            self.result['reasons'] = reasons + self.result['reasons']
            self._check_created(image, timestamp)
            # The daemon lists the container's changes (for the next check mode) while it streams the image.
            pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
            changes = pool.submit(self._changes_of(container))
            pool.shutdown(wait=False)
            sidecar = self._save_and_publish(container, image, timestamp, changes.result)
        final = os.path.join(folder, tarball_name(env, timestamp))
        self.result['changed'] = True
        self.result['tarball'] = dict(path=final, file=os.path.basename(final), env=env, timestamp=timestamp,
                                      date=store.iso_date(timestamp), size=sidecar['size'], sha256=sidecar['sha256'],
                                      image_id=sidecar['image_id'])
        self.step = 'deleting the tarballs of %s beyond keep=%d' % (env, self.keep)
        self.result['removed'] = store.remove_beyond(folder, env, self.keep)
        try:
            self.result['removed_images'] = self._remove_superseded_images(image['Id'])
        except _TRANSPORT_ERRORS as exc:
            raise Failure('Published %s, but could not remove the superseded images of %s from %s: %s.'
                          % (final, env, self.docker_host, explain(exc)), **self.result)
        self.result['diff']['after'] = dict(tarballs=self._before())
        return self.result

    def _commit(self, container, base_config, timestamp, stop, trial=False):
        """Commit the container as an image of its base (image_config.py) labelled with timestamp; with stop, stop
        it first and start it again right after.

        The start runs on a thread (self.restart), so the save does not wait for it; the publish does.
        """
        name = container_name(self.env)
        conf = commit_config(container.get('Config'), base_config, self.env, timestamp)
        marker = store.restart_marker_path(self.folder, self.env)
        if stop:
            store.write_json_atomically(marker, dict(container_id=container['Id']), 0o644)
        try:
            if stop:
                self.step = 'stopping %s for its commit' % name
                self.client.api.stop(container['Id'], timeout=self.stop_timeout)
            self.step = 'committing %s%s' % (name, ' for a trial comparison' if trial else '')
            with self._patient():
                committed = self.client.api.commit(container['Id'], conf=conf, pause=True)
            if stop:
                self.restart = _Restart(self.client, container['Id'])
        except BaseException as exc:
            self._ending()
            failure = self._as_failure(exc)
            if stop and self.restart is None:
                self._start_after_failure(container, marker, failure)
            if failure is not None and failure is not exc:
                raise failure
            raise
        self.step = 'reading the image committed from %s' % name
        return self.client.api.inspect_image(committed['Id'])

    def _wait_for_restart(self):
        """Wait for the start _commit began: None once the container runs again (or none was begun), else why not."""
        restart, self.restart = self.restart, None
        if restart is None:
            return None
        problem = restart.wait()
        if problem is None:
            store.remove_quietly(store.restart_marker_path(self.folder, self.env))
        return problem

    def _require_restarted(self):
        problem = self._wait_for_restart()
        if problem:
            raise Failure('Committed %s but could not start it again: %s. Nothing was published.'
                          % (container_name(self.env), problem))

    @contextlib.contextmanager
    def _restart_awaited(self):
        """Whatever happens inside, leave only once the start _commit began has ended; report a failed start."""
        try:
            yield
        except BaseException as exc:
            self._ending()
            failure = self._as_failure(exc)
            problem = self._wait_for_restart()
            if problem and failure is not None:
                failure.msg += ' The container could not be started again either: %s' % problem
            if failure is not None and failure is not exc:
                raise failure
            raise
        finally:
            self._wait_for_restart()

    def _ending(self):
        """The run is failing: from now on a SIGTERM would only break off the clean-up, so it is not raised."""
        if self.sigterm is not None:
            self.sigterm.ending()

    def _start_after_failure(self, container, marker, failure):
        """Start the container again after its stop or commit failed or was interrupted.

        An interrupted stop goes on in the daemon: stop waits for it to end (at once when it has), so the start
        comes after it and the container is not left exited. A failed start keeps the marker for the next run.
        """
        try:
            self.client.api.stop(container['Id'], timeout=self.stop_timeout)
            self.client.api.start(container['Id'])
            store.remove_quietly(marker)
        except _TRANSPORT_ERRORS as start_exc:
            if failure is not None:
                failure.msg += ' The container could not be started again either: %s' % explain(start_exc)

    def _check_created(self, image, timestamp):
        created = parse_docker_time(image.get('Created'))
        if int(created) < timestamp:
            _remove_image_quietly(self.client, image['Id'])
            raise Failure('The image was created at %s, before its timestamp %d: the clock of %s went back; retry.'
                          % (image.get('Created'), timestamp, self.docker_host))

    def _save_and_publish(self, container, image, timestamp, changes):
        """Tag the image :base, stream it to disk and publish it; on failure give :base back to the previous image."""
        previous = inspect_or_none(self.client, self.reference)
        previous_id = previous['Id'] if previous else None
        needed = image.get('Size') or 0
        free = store.free_bytes(self.folder)
        if free < needed:
            _remove_image_quietly(self.client, image['Id'])
            raise Failure('Tarball folder %s is full: %d MB free, the image needs about %d MB; free space or set '
                          'tarball_dir. Nothing was published.' % (self.folder, free // 1000000, needed // 1000000 + 1))
        self.step = 'tagging the image %s' % self.reference
        self.client.api.tag(image['Id'], self.repository, BASE_TAG)
        self.step = 'saving %s' % self.reference
        try:
            return self._save(container, image, timestamp, changes)
        except BaseException:
            self._ending()
            self._give_base_back(image['Id'], previous_id)
            raise

    def _give_base_back(self, image_id, previous_id):
        try:
            if previous_id and previous_id != image_id and inspect_or_none(self.client, previous_id):
                self.client.api.tag(previous_id, self.repository, BASE_TAG)
            else:
                self.client.api.remove_image(self.reference)
            _remove_image_quietly(self.client, image_id)
        except _TRANSPORT_ERRORS:
            pass

    @contextlib.contextmanager
    def _patient(self):
        """Wait up to image_timeout for the daemon's answer (committing or staging a large image is slow)."""
        usual = self.client.api.timeout
        self.client.api.timeout = max(usual, self.image_timeout)
        try:
            yield
        finally:
            self.client.api.timeout = usual

    def _chunks(self, progress):
        """The image archive from the daemon, with transport errors turned into one line; progress counts it."""
        try:
            # Docker stages the whole image before its first byte; docker-py lifts the timeout once bytes flow.
            with self._patient():
                chunks = self.client.api.get_image(self.reference, chunk_size=SAVE_CHUNK_SIZE)
                first = next(chunks, b'')
            progress['first_byte'] = time.monotonic()
            progress['bytes'] += len(first)
            yield first
            for chunk in chunks:
                progress['bytes'] += len(chunk)
                yield chunk
        except _TRANSPORT_ERRORS as exc:
            raise Failure('The Docker daemon at %s stopped sending %s for %s after %d bytes: %s. Nothing was published.'
                          % (self.docker_host, self.reference, self.target, progress['bytes'], explain(exc)))

    def _save(self, container, image, timestamp, changes):
        final = os.path.join(self.folder, tarball_name(self.env, timestamp))
        temp, fd = store.create_temp(final)
        try:
            indexer = ArchiveIndexer(final, trust_layer_digests=True)
            whole = hashlib.sha256()
            progress = dict(bytes=0, first_byte=None)
            started = time.monotonic()
            size = stream_to_file(self._chunks(progress), fd, temp, (whole.update, indexer.feed))
            indexer.finish()
            flushing = time.monotonic()
            store.seal(fd, temp, self.mode)
            fd = None
            ended = time.monotonic()
            described = indexer.describe(read_member_from(temp))
            if described['image_id'] != image['Id'] or self.reference not in described['repo_tags']:
                raise Failure('The daemon saved image %s tagged %s, not %s as %s; was %s retagged meanwhile? Nothing '
                              'was published.' % (described['image_id'], described['repo_tags'], image['Id'],
                                                  self.reference, self.reference))
            sidecar = self._sidecar(container, image, timestamp, changes, described, size, whole.hexdigest(), final)
            self._require_restarted()
            self.step = 'publishing %s' % final
            store.publish(temp, final, sidecar, self.mode)
        finally:
            if fd is not None:
                os.close(fd)
            store.remove_quietly(temp)
        seconds = ended - started
        self.result['save'] = dict(seconds=round(seconds, 3), bytes=size,
                                   mb_per_s=round(size / 1e6 / seconds, 1) if seconds else None,
                                   staging_seconds=round(progress['first_byte'] - started, 3),
                                   flush_seconds=round(ended - flushing, 3))
        return sidecar

    def _sidecar(self, container, image, timestamp, changes, described, size, sha256, final):
        version = self.engine
        try:
            listed = changes()
        except _TRANSPORT_ERRORS as exc:
            raise Failure('The Docker daemon at %s stopped answering while %s was saved for %s: %s. Nothing was '
                          'published.' % (self.docker_host, self.reference, self.target, explain(exc)))
        sidecar = dict(
            format=store.SIDECAR_FORMAT, env=self.env, timestamp=timestamp, file=os.path.basename(final),
            size=size, sha256=sha256,
            source=dict(container=container_name(self.env), container_id=container['Id'],
                        host=self.daemon_name or socket.gethostname()),
            engine=dict(version=version.get('Version'), api_version=version.get('ApiVersion')),
            created=datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ'),
            image_created=image.get('Created'),
            runtime_config=runtime_config(image.get('Config'), self.env),
            container_changes=changes_digest(listed),
        )
        sidecar.update(described)
        return sidecar

    def _remove_superseded_images(self, current_id):
        """Remove this environment's images this module committed, other than current_id, that nothing uses."""
        return remove_committed_images(self.client, self.env, keep_id=current_id)[0]


def remove_committed_images(client, env, keep_id=None, check_mode=False):
    """Remove the images packaging committed for env (labelled with it and a timestamp), other than keep_id.

    Kept: an image a container uses and one a tag outside kohakuriver/<env> names. Returns (removed IDs, kept: one
    'ID: why' line each); in check mode nothing is removed and removed lists what would go.
    """
    repository = image_repository(env)
    filters = {'label': ['%s=%s' % (LABEL_ENV, env), LABEL_TIMESTAMP]}
    in_use = set(found.get('ImageID') for found in client.api.containers(all=True))
    removed, kept = [], []
    for found in client.api.images(filters=filters):
        tags = [tag for tag in found.get('RepoTags') or [] if tag != '<none>:<none>']
        foreign = [tag for tag in tags if not tag.startswith(repository + ':')]
        if found['Id'] == keep_id:
            continue
        if found['Id'] in in_use or foreign:
            kept.append('%s: %s' % (found['Id'], 'a container uses it' if found['Id'] in in_use
                                    else 'also tagged ' + ', '.join(foreign)))
            continue
        try:
            if not check_mode:
                for tag in tags or [found['Id']]:
                    client.api.remove_image(tag)
            removed.append(found['Id'])
        except APIError as exc:
            if getattr(exc, 'status_code', None) not in (404, 409):
                raise
            kept.append('%s: %s' % (found['Id'], explain(exc)))
    return removed, kept


def remove_tarballs(params, check_mode=False, client=None):
    """state=absent: delete one named tarball of the environment, or all of them, each with its sidecar.

    With purge (and a client of the Host's daemon), the environment is going away: its package lock and the images
    packaging committed for it (remove_committed_images) go too.
    """
    env = validate_env_name(params['name'])
    folder = store.tarball_folder(params['tarball_dir'])
    purge = bool(params.get('purge'))
    result = dict(changed=False, tarball=None, removed=[], cleaned=[], removed_images=[], kept_images=[], save=None,
                  reasons=[])
    named = params.get('tarball')
    if named is not None:
        found = store.named_tarball(folder, env, named)
        targets = [found] if found else []
        orphans = [] if found else [path for path in [store.sidecar_path(os.path.join(folder, named))]
                                    if os.path.isfile(path)]
    elif os.path.isdir(folder):
        targets = [store.named_tarball(folder, env, tarball.file_name) for tarball in store.list_tarballs(folder, env)]
        orphans = []
    else:
        targets, orphans = [], []
    lock = lock_path(folder, env, LOCK_PURPOSE)
    if purge and os.path.lexists(lock):
        orphans.append(lock)
    before = [tarball.file_name for tarball in store.list_tarballs(folder, env)] if os.path.isdir(folder) else []
    gone = set(tarball.file_name for tarball in targets)
    result['diff'] = dict(before=dict(tarballs=before), after=dict(tarballs=[name for name in before if name not in gone]))
    if purge:
        result['removed_images'], result['kept_images'] = remove_committed_images(client, env, check_mode=check_mode)
    result['changed'] = bool(targets or orphans or result['removed_images'])
    if check_mode or not (targets or orphans):
        result['removed'] = [tarball.path for tarball in targets]
        result['cleaned'] = orphans if check_mode else []
        return result
    with env_lock(folder, env, purpose=LOCK_PURPOSE):
        for tarball in targets:
            if store.remove_tarball(tarball):
                result['removed'].append(tarball.path)
        # The lock file goes last, while held; a packaging that waited on it then finds the environment gone.
        result['cleaned'] = [path for path in orphans if store.remove_quietly(path)]
        store.fsync_folder(folder)
    return result
