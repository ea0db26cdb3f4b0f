# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image_sync with several environments in one run (names, all_tarballs, pins): which environments, then each in turn.

One module process per runner syncs them all, so a playbook needs no task before it to find the environments (every
runner lists its own view of the tarball folder) and no process per environment. An environment that fails does not
stop the others, as a loop would go on; the run then fails naming each failure.
"""

from __future__ import annotations

import os

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import validate_env_name
from ansible_collections.kohakuriver.docker.plugins.module_utils.store import list_tarballs, tarball_folder


def asks_for_many(params):
    """True for image_sync's names or all_tarballs, False for its name; a Failure for both or neither."""
    many = params.get('names') is not None or bool(params.get('all_tarballs'))
    if many == (params.get('name') is not None):
        raise Failure('Give name (one environment), or names and/or all_tarballs=true (several), not %s.'
                      % ('both' if many else 'neither'))
    return many


def environments(names, all_tarballs, tarball_dir, folder_may_be_missing=False):
    """names (validated, each once, in order), then with all_tarballs every other environment with a tarball in
    tarball_dir, by name. A missing folder is a Failure unless folder_may_be_missing (a registry holds the images)."""
    chosen = []
    for name in names or []:
        if validate_env_name(name, 'names entry') not in chosen:
            chosen.append(name)
    folder = tarball_folder(tarball_dir)
    if not all_tarballs or (folder_may_be_missing and not os.path.isdir(folder)):
        return chosen
    found = list_tarballs(folder)
    return chosen + sorted(set(tarball.env for tarball in found) - set(chosen))


def checked_pins(pins, envs):
    """pins ({env: pin}) when each names an environment synced in this run, else a Failure saying which do not."""
    pins = pins or {}
    stray = sorted(str(env) for env in pins if env not in envs)
    if stray:
        raise Failure('pins name %s, which %s not synced in this run (synced: %s): pin only environments in names or, '
                      'with all_tarballs, with a tarball in tarball_dir.'
                      % (', '.join(stray), 'is' if len(stray) == 1 else 'are', ', '.join(envs) or 'none'))
    return pins


def sync_each(envs, pins, sync_one, explain_error=None):
    """sync_one(env, pin) for each env; image_sync's result of a list: changed, results (each env's own result, or
    env, failed and msg), warnings (each prefixed with its env) and diff (a list). Any failure: a Failure, after all."""
    results, warnings, diffs, failures = [], [], [], []
    for env in envs:
        try:
            result = dict(sync_one(env, pins.get(env)))
        except Failure as failure:
            result = dict(failure.result, env=env, failed=True, msg=failure.msg)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            message = explain_error(exc) if explain_error is not None else None
            if message is None:
                raise
            result = dict(env=env, failed=True, msg=message)
        warnings.extend('%s: %s' % (env, warning) for warning in result.pop('warnings', None) or [])
        if 'diff' in result:
            diffs.append(result.pop('diff'))
        if result.get('failed'):
            failures.append('%s: %s' % (env, result['msg']))
        results.append(result)
    outcome = dict(changed=any(result.get('changed') for result in results), results=results, warnings=warnings,
                   diff=diffs)
    if failures:
        raise Failure('%d of %d environments failed to sync; %s' % (len(failures), len(envs), ' '.join(failures)),
                      **outcome)
    return outcome
