# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tarball module with its progress printed on the controller while it packages (plugin_utils/progress_action.py)."""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.plugin_utils.progress_action import ProgressAction
from ansible_collections.kohakuriver.docker.plugins.plugin_utils.progress_report import figures_line


class ActionModule(ProgressAction):

    def streams(self, args):
        return args.get('state', 'present') != 'absent'

    def figures(self, result):
        save = result.get('save') or {}
        line = figures_line(save.get('bytes'), save.get('seconds'), save.get('mb_per_s'))
        return ('saved %s' % line) if line else 'unchanged, nothing saved'
