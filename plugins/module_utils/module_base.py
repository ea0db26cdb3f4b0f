# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every module shares with Ansible: failures as one-line fail_json, warnings and diff out of the result.

Nothing here knows Docker, so a module that talks to no daemon (tarball_info) ships neither the connection code
nor the SDK in its payload; module.py adds the connection options and Docker's errors on top.
"""

from __future__ import annotations

# env_fallback and missing_required_lib are re-exported for module.py, so that this file alone imports Ansible.
from ansible.module_utils.basic import AnsibleModule, env_fallback, missing_required_lib  # pylint: disable=unused-import

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure


def new_module(argument_spec, **kwargs):
    """An AnsibleModule for a module that takes no connection options."""
    return AnsibleModule(argument_spec=dict(argument_spec), **kwargs)


def run(module, operation, explain_error=None):
    """Call operation(module) and exit with its result; a Failure becomes a one-line fail_json.

    explain_error(exc) may turn another exception into a one-line message (None: the exception is a bug, raised).
    A result's (or a Failure's) `warnings` are issued with module.warn; its `diff` is returned only in diff mode.
    """
    try:
        result = operation(module)
    except Failure as failure:
        module.fail_json(msg=failure.msg, **_reported(module, failure.result))
    except Exception as exc:  # pylint: disable=broad-exception-caught
        message = explain_error(exc) if explain_error is not None else None
        if message is None:
            raise
        module.fail_json(msg=message)
    module.exit_json(**_reported(module, result))


def _reported(module, result):
    result = dict(result)
    for warning in result.pop('warnings', None) or []:
        module.warn(warning)
    if not module._diff:
        result.pop('diff', None)
    return result
