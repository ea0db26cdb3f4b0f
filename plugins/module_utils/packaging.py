# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packaging an environment container into a tarball on shared storage (the tarball module with state=present).

Under the environment's package lock: clean what killed runs left, choose the timestamp, commit the container
(stopped, or paused) with the base image's runtime config and the image labels (image_config.py) and start it again
(commit_guard.py), stream `docker save` into a hidden file while indexing it, publish sidecar (sidecar.py) and tarball
atomically, then drop tarballs beyond `keep` and this module's superseded images (images.py).

"Unchanged" is decided from Docker facts (freshness.py): a trial commit whose layer diff IDs and user-visible config
equal those the newest tarball's sidecar records means the container has not changed since that tarball; the trial
image is ours and untagged, and is dropped.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import hashlib
import os
import socket
import time

from ansible_collections.kohakuriver.docker.plugins.module_utils import sidecar as sidecar_format
from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.archive_indexer import ArchiveIndexer, read_member_from
from ansible_collections.kohakuriver.docker.plugins.module_utils.client import APIError, DOCKER_ERRORS, explain, inspect_or_none
from ansible_collections.kohakuriver.docker.plugins.module_utils.commit_guard import CommitGuard, recover_stopped
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import foreign_container, is_managed
from ansible_collections.kohakuriver.docker.plugins.module_utils.continuation import base_labels, marker_path
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.freshness import changes_digest, reasons_to_package, same_content
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_config import commit_config, runtime_config
from ansible_collections.kohakuriver.docker.plugins.module_utils.image_identity import sidecar_image_ids
from ansible_collections.kohakuriver.docker.plugins.module_utils.images import remove_committed_images, remove_quietly
from ansible_collections.kohakuriver.docker.plugins.module_utils.locks import PACKAGE_PURPOSE, env_lock
from ansible_collections.kohakuriver.docker.plugins.module_utils.packaging_chain import ChainSteps
from ansible_collections.kohakuriver.docker.plugins.module_utils.packaging_registry import RegistrySteps
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import BASE_TAG, container_name, image_reference, image_repository, tarball_name
from ansible_collections.kohakuriver.docker.plugins.module_utils.progress import Progress
from ansible_collections.kohakuriver.docker.plugins.module_utils.savestream import SAVE_CHUNK_SIZE, stream_to_file
from ansible_collections.kohakuriver.docker.plugins.module_utils.signing import signer_of
from ansible_collections.kohakuriver.docker.plugins.module_utils.sigterm import SigtermAsFailure
from ansible_collections.kohakuriver.docker.plugins.module_utils.times import DaemonClock, iso_now, iso_seconds, parse_docker_time

MAX_CLOCK_LEAD = 120
_TRANSPORT_ERRORS = DOCKER_ERRORS + (OSError, ValueError)
# Errors of the daemon or the disk that a packaging step turns into a Failure naming the step (the rest are bugs).
_STEP_ERRORS = DOCKER_ERRORS + (OSError,)


def _container_or_fail(client, env, docker_host):
    try:
        return client.api.inspect_container(container_name(env))
    except APIError as exc:
        if getattr(exc, 'status_code', None) == 404:
            raise Failure('Environment %s has no container %s on %s; create it first with kohakuriver.docker.container.'
                          % (env, container_name(env), docker_host))
        raise


class Packaging(ChainSteps, RegistrySteps):
    """One packaging run of one environment; run() returns the module result."""

    def __init__(self, client, request, check_mode=False):
        self.client = client
        self.request = request
        self.env = request.env
        self.folder = request.folder
        self.keep = request.keep
        self.check_mode = check_mode
        self.docker_host = request.docker_host
        self.repository = image_repository(self.env)
        self.reference = image_reference(self.env)
        self.guard = None
        self.continuation = None
        self.squashed_id = None
        self.sigterm = None
        # What is being done and for which file, for the message of a Docker or disk error (see _failure).
        self.step = 'reading %s' % container_name(self.env)
        self.target = self.folder
        self.result = dict(changed=False, tarball=None, removed=[], cleaned=[], removed_images=[], save=None,
                           reasons=[], waited_for_lock=0.0, runner_update=None, registry=None)
        self.image_layers = []
        self.progress = Progress(getattr(request, 'progress_file', None))

    def run(self):
        try:
            return self._run()
        except _STEP_ERRORS as exc:
            raise self._failure(exc)
        finally:
            self.progress.close()

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
        if not self.request.adopt and not is_managed((container.get('Config') or {}).get('Labels')):
            raise foreign_container(container_name(self.env), container)
        return container

    def _base_config(self, container):
        """The Config of the image the container was created from: the commit gives the image its runtime."""
        self.step = 'reading the image %s was created from' % container_name(self.env)
        try:
            image = self.client.api.inspect_image(container['Image'])
            self.image_layers = (image.get('RootFS') or {}).get('Layers') or []
            return image.get('Config') or {}
        except APIError as exc:
            if getattr(exc, 'status_code', None) != 404:
                raise
        raise Failure('The image %s (%s) that %s was created from is no longer on %s, so the Entrypoint and Cmd '
                      'its image must keep are unknown; load that image again, or recreate the container.'
                      % ((container.get('Config') or {}).get('Image'), container['Image'], container_name(self.env),
                         self.docker_host))

    def _run(self):
        created = store.ensure_folder(self.folder, check_mode=self.check_mode)
        if self.check_mode or not os.path.exists(marker_path(self.folder, self.env)):
            # (A killed continuation may have left the container renamed aside: the locked run puts it back first.)
            container = self._container()
        if self.check_mode:
            return self._predict(container, created)
        with SigtermAsFailure('Interrupted by SIGTERM; nothing was published.') as self.sigterm:
            with env_lock(self.folder, self.env, purpose=PACKAGE_PURPOSE) as waited:
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
        reasons = reasons_to_package(self.request.force, newest, container, self._changes_of(container), self.env,
                                     self._base_config(container)) + self._signing_reasons(newest)
        before = [] if created else self._before()
        self.result.update(changed=bool(reasons), reasons=reasons, diff=dict(before=dict(tarballs=before)))
        if reasons:
            timestamp = store.choose_timestamp(DaemonClock(self.client).now(), newest.timestamp if newest else None)
            after = store.names_kept([tarball_name(self.env, timestamp)] + before, self.keep, self.request.protect)
            self.result['tarball'] = dict(path=os.path.join(self.folder, tarball_name(self.env, timestamp)),
                                          env=self.env, timestamp=timestamp,
                                          signed_by=self.request.signer.signed_by if self.request.signer else None)
            self.result['runner_update'] = self._predicted_update(container, newest)
            self._predict_registry(newest, timestamp)
        else:
            after = before
            self.result['tarball'] = self._tarball_result(newest)
            self._predict_registry(newest, None)
        self.result['diff']['after'] = dict(tarballs=after, runner_update=self.result['runner_update'])
        return self.result

    def _signing_reasons(self, newest):
        """With signing_key, a newest tarball not signed by that key is packaged again (a new key, or none before)."""
        signer = self.request.signer
        if signer is None or newest is None:
            return []
        signed_by = signer_of(store.signature_path(newest.path))
        if signed_by is not None and signed_by['key'] == str(signer.key):
            return []
        return ['the newest tarball %s is not signed by signing_key (%s)' % (newest.file_name, signer.key)]

    def _continued_changes(self):
        return self.client.api.diff(self.continuation.new_id) or []

    def _changes_of(self, container):
        return lambda: self.client.api.diff(container['Id']) or []

    def _tarball_result(self, tarball):
        sidecar = tarball.sidecar or {}
        return dict(path=tarball.path, file=tarball.file_name, env=self.env, timestamp=tarball.timestamp,
                    date=iso_seconds(tarball.timestamp), size=sidecar.get('size'), sha256=sidecar.get('sha256'),
                    image_id=sidecar.get('image_id'), signed_by=signer_of(store.signature_path(tarball.path)))

    def _restart_after_killed_run(self):
        """A run killed while the container was stopped left a marker: start the container it stopped (and first
        complete or roll back the continuation it had begun)."""
        self._recover_continuation()
        marker = store.restart_marker_path(self.folder, self.env)
        started = recover_stopped(self.client, marker)
        if started is None:
            return
        if started:
            self.result['reasons'].append('restarted the container an interrupted run had stopped')
        self.result['cleaned'].append(marker)

    def _package_locked(self):
        env, folder = self.env, self.folder
        before = self._before()
        self.result['diff'] = dict(before=dict(tarballs=before), after=dict(tarballs=before))
        container = self._container()
        self.guard = CommitGuard(self.client, container['Id'], container_name(env), store.restart_marker_path(folder, env),
                                 self.request.stop_timeout, sigterm=self.sigterm, as_failure=self._as_failure,
                                 on_step=self._set_step)
        base_config = self._base_config(container)
        newest = store.newest_tarball(folder, env)
        self.step = 'comparing %s with its newest tarball' % container_name(env)
        reasons = reasons_to_package(self.request.force, newest, container, self._changes_of(container), env, base_config)
        reasons += self._signing_reasons(newest)
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
        self._plan_continuation(container, running)
        image = None
        if not reasons:
            image = self._commit(container, base_config, timestamp, stop=False, trial=True)
            if same_content(image, newest.sidecar, env):
                remove_quietly(self.client, image['Id'])
                self.result['tarball'] = self._tarball_result(newest)
                self._publish_to_registry(newest, published=False)
                return self.result
            reasons.append('the container content changed since %s' % newest.file_name)
            if (running and not self.request.pause) or self.continuation is not None:
                remove_quietly(self.client, image['Id'])
                image = None
        with self.guard.awaiting_restart():
            if image is None:
                then, squash = self._after_commit(container)
                image = self._commit(container, base_config, timestamp, stop=running and not self.request.pause, then=then)
                if squash:
                    self.guard.require_restarted()  # the squashed image is the one saved
                    image = self.client.api.inspect_image(self.squashed_id)
            self.result['reasons'] = reasons + self.result['reasons']
            self._check_created(image, timestamp)
            if self.continuation is not None:
                # Read once the container continues (its changes since this commit: none yet, or what it wrote since).
                changes = self._continued_changes
            else:
                # The daemon lists the container's changes (for the next check mode) while it streams the image.
                pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
                changes = pool.submit(self._changes_of(container)).result
                pool.shutdown(wait=False)
            sidecar = self._save_and_publish(container, image, timestamp, changes)
        final = os.path.join(folder, tarball_name(env, timestamp))
        self.result['changed'] = True
        self.result['tarball'] = dict(path=final, file=os.path.basename(final), env=env, timestamp=timestamp,
                                      date=iso_seconds(timestamp), size=sidecar['size'], sha256=sidecar['sha256'],
                                      image_id=sidecar['image_id'],
                                      signed_by=self.request.signer.signed_by if self.request.signer else None)
        self.result['runner_update'] = self._made_update(sidecar, newest)
        self.step = 'deleting the tarballs of %s beyond keep=%d' % (env, self.keep)
        self.result['removed'] = store.remove_beyond(folder, env, self.keep, self.request.protect)
        try:
            self.result['removed_images'] = self._remove_superseded_images(image['Id'])
        except _TRANSPORT_ERRORS as exc:
            raise Failure('Published %s, but could not remove the superseded images of %s from %s: %s.'
                          % (final, env, self.docker_host, explain(exc)), **self.result)
        self.result['diff']['after'] = dict(tarballs=self._before(), runner_update=self.result['runner_update'])
        self._publish_to_registry(store.Tarball(folder, os.path.basename(final), env, timestamp), published=True)
        return self.result

    def _commit(self, container, base_config, timestamp, stop, trial=False, then=None):
        """Commit the container as an image of its base (image_config.py) labelled with timestamp; with stop, stop
        it first and start it again right after (self.guard: the save does not wait for that start, the publish does).
        """
        conf = commit_config(container.get('Config'), base_config, self.env, timestamp)
        if then is not None:
            # The continuing container gets these labels (continuation.py); the image has them too, so that its
            # config is what a commit of the continuing container gives (the next run finds nothing changed).
            conf['Labels'].update(base_labels(container))

        self.progress.start('committing %s' % container_name(self.env))

        def commit():
            with self._patient():
                return self.client.api.commit(container['Id'], conf=conf, pause=True)

        committed = self.guard.commit(commit, stop, trial=trial, then=then and (lambda found: then(found['Id'])))
        self.step = 'reading the image committed from %s' % container_name(self.env)
        return self.client.api.inspect_image(committed['Id'])

    def _set_step(self, step):
        self.step = step

    def _ending(self):
        """The run is failing: from now on a SIGTERM would only break off the clean-up, so it is not raised."""
        if self.sigterm is not None:
            self.sigterm.ending()

    def _check_created(self, image, timestamp):
        created = parse_docker_time(image.get('Created'))
        if int(created) < timestamp:
            self._drop(image['Id'])
            raise Failure('The image was created at %s, before its timestamp %d: the clock of %s went back; retry.'
                          % (image.get('Created'), timestamp, self.docker_host))

    def _save_and_publish(self, container, image, timestamp, changes):
        """Tag the image :base, stream it to disk and publish it; on failure give :base back to the previous image."""
        previous = inspect_or_none(self.client, self.reference)
        previous_id = previous['Id'] if previous else None
        needed = image.get('Size') or 0
        free = store.free_bytes(self.folder)
        if free < needed:
            self._drop(image['Id'])
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
            self._drop(image_id)
        except _TRANSPORT_ERRORS:
            pass

    @contextlib.contextmanager
    def _patient(self):
        """Wait up to image_timeout for the daemon's answer (committing or staging a large image is slow)."""
        usual = self.client.api.timeout
        self.client.api.timeout = max(usual, self.request.image_timeout)
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
            self.progress.start('saving %s' % self.reference, total=image.get('Size'), estimated=True)
            size = stream_to_file(self._chunks(progress), fd, temp, (whole.update, indexer.feed, self.progress.consumer))
            indexer.finish()
            flushing = time.monotonic()
            store.seal(fd, temp, self.request.mode)
            fd = None
            ended = time.monotonic()
            described = indexer.describe(read_member_from(temp))
            if image['Id'] not in sidecar_image_ids(described) or self.reference not in described['repo_tags']:
                raise Failure('The daemon saved image %s tagged %s, not %s as %s; was %s retagged meanwhile? Nothing '
                              'was published.' % (described['image_id'], described['repo_tags'], image['Id'],
                                                  self.reference, self.reference))
            self.guard.require_restarted()
            sidecar = self._sidecar(container, image, timestamp, changes, described, size, whole.hexdigest(), final)
            self.step = 'publishing %s' % final
            signer = self.request.signer
            store.publish(temp, final, sidecar, self.request.mode,
                          sign=(lambda raw: signer.sign(raw, store.sidecar_path(final))) if signer else None)
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
        return sidecar_format.build(
            env=self.env, timestamp=timestamp, file=os.path.basename(final), size=size, sha256=sha256,
            source=dict(container=container_name(self.env), container_id=self._source_id(container),
                        host=self.daemon_name or socket.gethostname()),
            engine=dict(version=version.get('Version'), api_version=version.get('ApiVersion')),
            created=iso_now(), image_created=image.get('Created'),
            runtime_config=runtime_config(image.get('Config'), self.env), container_changes=changes_digest(listed),
            described=described)

    def _remove_superseded_images(self, current_id):
        """Remove this environment's images this module committed, other than current_id, that nothing uses."""
        return remove_committed_images(self.client, self.env, keep_id=current_id)[0]
