# -*- coding: utf-8 -*-
# Copyright: kohakuriver.docker contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Ansible side of every module that talks to Docker: connection options, the missing SDK, Docker's errors.

The Docker SDK (module_utils/client.py) is imported when a module first needs it, not with this file, so that a
module can decide without it that there is nothing to do (see daemon.py).
"""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.module_utils import module_base
from ansible_collections.kohakuriver.docker.plugins.module_utils.module_base import AnsibleModule, env_fallback, missing_required_lib
from ansible_collections.kohakuriver.docker.plugins.module_utils.daemon import Daemon
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import DEFAULT_DOCKER_HOST, DEFAULT_TIMEOUT

CONNECTION_ARGUMENT_SPEC = dict(
    docker_host=dict(type='str', default=DEFAULT_DOCKER_HOST, aliases=['docker_url'],
                     fallback=(env_fallback, ['DOCKER_HOST'])),
    api_version=dict(type='str', default='auto', aliases=['docker_api_version'],
                     fallback=(env_fallback, ['DOCKER_API_VERSION'])),
    timeout=dict(type='int', default=DEFAULT_TIMEOUT, fallback=(env_fallback, ['DOCKER_TIMEOUT'])),
    tls=dict(type='bool', default=False, fallback=(env_fallback, ['DOCKER_TLS'])),
    validate_certs=dict(type='bool', default=False, aliases=['tls_verify'],
                        fallback=(env_fallback, ['DOCKER_TLS_VERIFY'])),
    ca_path=dict(type='path', aliases=['ca_cert', 'tls_ca_cert', 'cacert_path']),
    client_cert=dict(type='path', aliases=['tls_client_cert', 'cert_path']),
    client_key=dict(type='path', aliases=['tls_client_key', 'key_path'], no_log=False),
    tls_hostname=dict(type='str', fallback=(env_fallback, ['DOCKER_TLS_HOSTNAME'])),
    use_ssh_client=dict(type='bool', default=False),
    debug=dict(type='bool', default=False),
)


def connection_settings(params):
    return dict((key, params[key]) for key in CONNECTION_ARGUMENT_SPEC if key != 'debug')


def new_module(argument_spec, sdk_on_demand=False, **kwargs):
    """An AnsibleModule with the shared connection options, failing early when the Docker SDK is missing.

    With sdk_on_demand the SDK is only required (and imported) once the module asks for a client (client_for).
    """
    spec = dict(argument_spec)
    spec.update(CONNECTION_ARGUMENT_SPEC)
    module = AnsibleModule(argument_spec=spec, **kwargs)
    if module.params['api_version'] not in (None, '', 'auto'):
        from ansible_collections.kohakuriver.docker.plugins.module_utils.client import validate_api_version
        try:
            validate_api_version(module.params['api_version'])
        except Failure as failure:
            module.fail_json(msg=failure.msg)
    if not sdk_on_demand:
        require_sdk(module)
    return module


def require_sdk(module):
    from ansible_collections.kohakuriver.docker.plugins.module_utils.client import DOCKER_SDK_IMPORT_ERROR
    if DOCKER_SDK_IMPORT_ERROR:
        module.fail_json(msg=missing_required_lib('docker'), exception=DOCKER_SDK_IMPORT_ERROR)


def run(module, operation):
    """module_base.run, with Docker SDK errors that escape turned into one line: `Docker error: <explanation>`; with
    the debug option, the requests made are returned as docker_requests, whatever the outcome."""
    if module.params.get('debug'):
        operation = _with_request_log(operation)
    module_base.run(module, operation, explain_error=docker_error)


def _request_log(module):
    if not hasattr(module, 'kohakuriver_request_log'):
        module.kohakuriver_request_log = []
    return module.kohakuriver_request_log


def _with_request_log(operation):
    def logged(module):
        log = _request_log(module)
        try:
            result = operation(module)
        except Failure as failure:
            failure.result['docker_requests'] = list(log)
            raise
        except Exception as exc:  # pylint: disable=broad-exception-caught
            message = docker_error(exc)
            if message is None:
                raise
            raise Failure(message, docker_requests=list(log))
        return dict(result, docker_requests=list(log))
    return logged


def docker_error(exc):
    from ansible_collections.kohakuriver.docker.plugins.module_utils.client import DOCKER_ERRORS, explain
    return 'Docker error: %s' % explain(exc) if isinstance(exc, DOCKER_ERRORS) else None


def client_for(module):
    """A connected Docker SDK client for the module's connection options (raises Failure when unreachable)."""
    require_sdk(module)
    from ansible_collections.kohakuriver.docker.plugins.module_utils.client import connect
    request_log = _request_log(module) if module.params.get('debug') else None
    return connect(request_log=request_log, **connection_settings(module.params))


def daemon_for(module):
    """A Daemon for the module's connection options, whose SDK client is connected when first needed."""
    params = module.params
    # With debug every request goes through the SDK client (none through the probe without it), so each is noted.
    return Daemon(lambda: client_for(module), params['docker_host'], params['api_version'], params['timeout'],
                  tls=params['tls'] or params['validate_certs'] or params.get('debug'))
