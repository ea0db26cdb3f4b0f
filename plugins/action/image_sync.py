# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image_sync module with its progress printed on the controller while it loads (plugin_utils/progress_action.py);
with several environments, the last line gives the figures of each."""

from __future__ import annotations

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.kohakuriver.docker.plugins.plugin_utils.progress_action import ProgressAction
from ansible_collections.kohakuriver.docker.plugins.plugin_utils.progress_report import figures_line


class ActionModule(ProgressAction):

    def label(self, args):
        if args.get('name'):
            return args['name']
        names = args.get('names') or []
        names = [names] if isinstance(names, str) else list(names)
        return ','.join(names + (['all'] if boolean(args.get('all_tarballs', False), strict=False) else []))

    def figures(self, result):
        if 'results' in result:  # names or all_tarballs; a run with name has no results
            if len(result['results']) == 1:  # the label names it
                return self._figures_of_one(result['results'][0])
            return '; '.join('%s %s' % (one.get('env'), self._figures_of_one(one)) for one in result['results']) or 'nothing to sync'
        return self._figures_of_one(result)

    def _figures_of_one(self, result):
        if not result.get('loaded'):
            return '%s, nothing loaded' % ('tagged' if result.get('action') == 'tag' else 'up to date')
        return 'loaded %s' % figures_line(result.get('bytes_sent'), result.get('load_seconds'), result.get('load_mb_per_s'))
