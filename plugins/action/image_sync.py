# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image_sync module with its progress printed on the controller while it loads (plugin_utils/progress_action.py)."""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.plugin_utils.progress_action import ProgressAction
from ansible_collections.kohakuriver.docker.plugins.plugin_utils.progress_report import figures_line


class ActionModule(ProgressAction):

    def figures(self, result):
        if not result.get('loaded'):
            return '%s, nothing loaded' % ('tagged' if result.get('action') == 'tag' else 'up to date')
        return 'loaded %s' % figures_line(result.get('bytes_sent'), result.get('load_seconds'), result.get('load_mb_per_s'))
