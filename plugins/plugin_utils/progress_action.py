# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The action plugin of a module that streams a whole image (tarball, image_sync): the module, with its progress shown.

A module cannot print while it runs. When progress is to be printed (progress_report.chosen_mode and prints), this
runs the module as an async job (as `async:` with `poll: 0` would), with progress_file in the job's temporary folder;
then, every POLL seconds, asks ansible.builtin.async_status whether the job is done and reads the progress file, and
prints a line at least every PRINT_EVERY seconds; at the end it prints the figures and returns the job's result as the
module's own (so register, failed, changed, diff and warnings are those of a plain run). Otherwise (never, auto without
a terminal, check mode, a task with async of its own, a stream-free run such as tarball state=absent) the module runs
as ansible.builtin.normal runs it.
"""

from __future__ import annotations

import os
import shlex
import time

from ansible.plugins.action import ActionBase
from ansible.utils.display import Display
from ansible.utils.vars import merge_hash

from ansible_collections.kohakuriver.docker.plugins.plugin_utils.progress_report import (
    BadMode, chosen_mode, controller_on_terminal, parse_state, prints, progress_line,
)

POLL = 2.0
PRINT_EVERY = 5.0
ASYNC_LIMIT = 7 * 24 * 3600  # the module's own timeouts bound it; the async wrapper's limit only must not cut it short
_JOB_KEYS = ('ansible_job_id', 'started', 'finished', 'results_file')

display = Display()


class ProgressAction(ActionBase):

    _supports_check_mode = True
    _supports_async = True

    def streams(self, args):
        """Does a run with these arguments stream an image (and so has progress to show)?"""
        return True

    def figures(self, result):
        """The final line's figures of a successful result, or None."""
        return None

    def label(self, args):
        """What the printed lines name after the module: the module's subject."""
        return args.get('name') or ''

    def run(self, tmp=None, task_vars=None):
        result = super(ProgressAction, self).run(tmp, task_vars)
        del tmp
        task_vars = task_vars or {}
        try:
            mode = chosen_mode(self._task.args.get('progress'), self._templar.template(task_vars.get('kohakuriver_progress')),
                               os.environ.get('KOHAKURIVER_PROGRESS'))
        except BadMode as exc:
            if self._task.args.get('progress') is not None:
                mode = 'never'  # the module's argument spec refuses it, as it would without this plugin
            else:
                return merge_hash(result, dict(failed=True, msg=str(exc)))
        if (self._task.async_val or self._play_context.check_mode or self._connection.has_native_async
                or not self.streams(self._task.args) or not prints(mode, controller_on_terminal())):
            return merge_hash(result, self._plain(task_vars))
        return merge_hash(result, self._watched(task_vars))

    def _plain(self, task_vars):
        """As ansible.builtin.normal: the module, and the task's own async if it has one."""
        wrap_async = self._task.async_val
        result = self._execute_module(task_vars=task_vars, wrap_async=wrap_async)
        if not wrap_async:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _watched(self, task_vars):
        host = task_vars.get('inventory_hostname', '?')
        label = '%s %s' % (self._task.action.split('.')[-1], self.label(self._task.args))
        args = dict(self._task.args)
        if not args.get('progress_file'):
            tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
            args['progress_file'] = self._connection._shell.join_path(tmpdir, 'progress.json')
        started = time.monotonic()
        self._task.async_val = ASYNC_LIMIT
        try:
            job = self._execute_module(module_args=args, task_vars=task_vars, wrap_async=True)
        finally:
            self._task.async_val = 0
        if job.get('failed') or not job.get('ansible_job_id'):
            return job
        async_dir = self._remote_expand_user(self.get_shell_option('async_dir', default='~/.ansible_async'))
        jid = job['ansible_job_id']
        printed = None
        try:
            while True:
                status = self._execute_module(module_name='ansible.legacy.async_status', task_vars=task_vars,
                                              module_args=dict(jid=jid, mode='status', _async_dir=async_dir))
                if status.get('finished') or status.get('failed'):
                    break
                now = time.monotonic()
                if printed is None or now - printed >= PRINT_EVERY:
                    line = progress_line(self._read_state(args['progress_file']), now - started)
                    display.display('%s [%s]: %s' % (label, host, line))
                    printed = now
                time.sleep(POLL)
            figures = None if status.get('failed') else self.figures(status)
            if figures:
                display.display('%s [%s]: done, %s' % (label, host, figures))
            self._execute_module(module_name='ansible.legacy.async_status', task_vars=task_vars,
                                 module_args=dict(jid=jid, mode='cleanup', _async_dir=async_dir))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return dict((key, value) for key, value in status.items() if key not in _JOB_KEYS)

    def _read_state(self, path):
        found = self._low_level_execute_command('cat %s 2>/dev/null || true' % shlex.quote(path), sudoable=True)
        return parse_state(found.get('stdout') or '')
