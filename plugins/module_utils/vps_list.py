# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The VPS sessions on a daemon, for vps_info: one list call, nothing changed (so no sync, task or packaging code)."""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
    LABEL_ENV, LABEL_MANAGED, LABEL_VPS, validate_env_name, vps_container_name,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.vps_options import describe, validate_session


class VpsListRequest(object):
    """The validated parameters of one vps_info task: which sessions, and the host their SSH commands name."""

    def __init__(self, params):
        self.session = validate_session(params['name']) if params.get('name') else None
        self.env = validate_env_name(params['env'], 'env') if params.get('env') else None
        self.ssh_host = params.get('ssh_host')
        self.docker_host = params.get('docker_host')


def list_sessions(client, request):
    """Every VPS session on the daemon (one list call), optionally only one session or one environment's."""
    session = request.session
    filters = {'label': ['%s=true' % LABEL_MANAGED, LABEL_VPS if session is None else '%s=%s' % (LABEL_VPS, session)]}
    if request.env:
        filters['label'].append('%s=%s' % (LABEL_ENV, request.env))
    found = [describe(entry, request.ssh_host, request.docker_host)
             for entry in client.api.containers(all=True, filters=filters)]
    return dict(changed=False, sessions=sorted((item for item in found if item['container'] == vps_container_name(item['session'])),
                                               key=lambda item: item['session']))
