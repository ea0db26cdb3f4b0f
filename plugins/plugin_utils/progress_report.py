# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The controller's side of a progress file (module_utils/progress.py): whether to print, and the lines printed.

Standard library only, so that it is tested without a play.
"""

from __future__ import annotations

import json
import os
import re

MODES = ('auto', 'always', 'never')
_TERMINAL = re.compile(r'^/dev/(pts/\d+|tty\w*|console)$')


class BadMode(ValueError):
    """A progress setting that is none of MODES; the message says where it came from and what to give."""


def chosen_mode(option, variable, environment):
    """The mode the option, else the variable kohakuriver_progress, else $KOHAKURIVER_PROGRESS asks; auto when none."""
    for source, value in (('progress', option), ('kohakuriver_progress', variable), ('KOHAKURIVER_PROGRESS', environment)):
        if value is None or value == '':
            continue
        text = str(value).strip().lower()
        if text not in MODES:
            raise BadMode('%s is %r; give one of %s.' % (source, value, ', '.join(MODES)))
        return text
    return 'auto'


def controller_on_terminal(pid=None):
    """Does the ansible-playbook process (pid; the parent of this worker when None) write its output to a terminal?

    Ansible detaches its workers from the terminal (their stdout is /dev/null), so this looks at the parent's own
    stdout; where /proc is missing (not Linux) the answer is no, and auto stays quiet.
    """
    try:
        target = os.readlink('/proc/%d/fd/1' % (os.getppid() if pid is None else pid))
    except OSError:
        return False
    return bool(_TERMINAL.match(target))


def prints(mode, on_terminal):
    return mode == 'always' or (mode == 'auto' and on_terminal)


def parse_state(text):
    """The progress file's object, or None for no file (empty text) or one that is not a progress object."""
    try:
        state = json.loads(text) if text and text.strip() else None
    except ValueError:
        return None
    return state if isinstance(state, dict) and isinstance(state.get('done_bytes'), int) else None


def size(count):
    """Bytes as people read them, in powers of 1000 as docker does: 950 B, 12.3 MB, 1.50 GB."""
    if count is None:
        return '?'
    for unit, scale in (('GB', 1e9), ('MB', 1e6), ('kB', 1e3)):
        if abs(count) >= scale:
            return '%.*f %s' % (2 if unit == 'GB' else 1, count / scale, unit)
    return '%d B' % count


def duration(seconds):
    """12s, 3m05s, 1h02m."""
    seconds = int(max(0, round(seconds)))
    if seconds < 60:
        return '%ds' % seconds
    if seconds < 3600:
        return '%dm%02ds' % divmod(seconds, 60)
    hours, rest = divmod(seconds, 3600)
    return '%dh%02dm' % (hours, rest // 60)


def progress_line(state, elapsed):
    """One line for a progress object (None: the module has not written one yet), elapsed seconds into the job."""
    if state is None:
        return 'starting (%s)' % duration(elapsed)
    phase = state.get('phase') or 'working'
    done, total = state.get('done_bytes') or 0, state.get('total_bytes')
    if not done and not total:
        return '%s (%s)' % (phase, duration(elapsed))
    parts = [size(done)]
    if total:
        approximate = '~' if state.get('total_estimated') else ''
        parts[0] += ' of %s%s (%s%d%%)' % (approximate, size(total), approximate, min(100, 100 * done // total))
    rate = state.get('rate_bytes_per_s')
    if rate is not None:
        parts.append('%s/s' % size(rate))
    eta = state.get('eta_seconds')
    if eta is not None and total:
        parts.append('%s left' % duration(eta) if done < total else 'all sent, waiting for the daemon')
    return '%s: %s (%s)' % (phase, ', '.join(parts), duration(elapsed))


def figures_line(count, seconds, mb_per_s):
    """The final figures: 1.20 GB in 14s (85.7 MB/s)."""
    if count is None or seconds is None:
        return None
    rate = ' (%s MB/s)' % mb_per_s if mb_per_s is not None else ''
    return '%s in %s%s' % (size(count), duration(seconds), rate)
