from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import client
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure


def test_an_absent_socket_fails_with_one_line_naming_the_address(tmp_path):
    address = 'unix://%s' % (tmp_path / 'missing.sock')
    with pytest.raises(client.DaemonUnreachable) as failure:
        client.connect(docker_host=address, timeout=5)
    assert failure.value.msg.startswith('Cannot reach the Docker daemon at %s: ' % address)
    assert '\n' not in failure.value.msg


def test_a_closed_tcp_port_fails_with_one_line_naming_the_address():
    with pytest.raises(client.DaemonUnreachable) as failure:
        client.connect(docker_host='tcp://127.0.0.1:9', timeout=5)
    assert 'tcp://127.0.0.1:9' in failure.value.msg
    assert '\n' not in failure.value.msg


def test_tls_options_are_refused_for_a_unix_socket():
    with pytest.raises(Failure, match='TLS options apply to tcp:// daemons only'):
        client.connect(docker_host='unix:///var/run/docker.sock', validate_certs=True)


def test_a_client_certificate_needs_its_key(tmp_path):
    cert = tmp_path / 'cert.pem'
    cert.write_text('x')
    with pytest.raises(Failure, match='both client_cert and client_key'):
        client.connect(docker_host='tcp://127.0.0.1:2376', tls=True, client_cert=str(cert))


def test_a_missing_ca_file_is_named(tmp_path):
    with pytest.raises(Failure, match='ca_path .*missing.pem does not exist'):
        client.connect(docker_host='tcp://127.0.0.1:2376', validate_certs=True, ca_path=str(tmp_path / 'missing.pem'))


def test_docker_cert_path_supplies_the_certificate_files(tmp_path, monkeypatch):
    monkeypatch.setenv('DOCKER_CERT_PATH', str(tmp_path))
    with pytest.raises(Failure, match='ca_path %s does not exist' % (tmp_path / 'ca.pem')):
        client.connect(docker_host='tcp://127.0.0.1:2376', validate_certs=True)


def test_explain_folds_api_errors_to_one_line():
    from docker.errors import APIError
    assert client.explain(APIError('500 Server Error', explanation='no such image:\n  foo')) == 'no such image: foo'


@pytest.mark.parametrize('api_version', ['abc', '1.41\n', '1', 'v1.41', '1.41.0'])
def test_a_malformed_api_version_is_refused_naming_the_option_before_connecting(api_version):
    with pytest.raises(Failure) as failure:
        client.connect(docker_host='unix:///nonexistent/docker.sock', api_version=api_version, timeout=5)
    assert not isinstance(failure.value, client.DaemonUnreachable)
    assert failure.value.msg == 'api_version %r is not valid: use auto or a Docker API version like 1.41.' % (api_version,)


@pytest.mark.parametrize('api_version', ['auto', '1.41', '1.45', None])
def test_auto_and_dotted_api_versions_are_accepted(api_version):
    assert client.validate_api_version(api_version) == (api_version or 'auto')


# client.py keeps paramiko out of the Docker SDK's import (sys.modules['paramiko'] = None) and binds the SSH transport
# itself for ssh:// (_add_ssh_transport). That leans on docker-py internals, checked here in a fresh interpreter.
_PARAMIKO_GUARD_PROBE = r'''
import json
import sys

from ansible_collections.kohakuriver.docker.plugins.module_utils import client
import docker.api.client

seen = dict(sdk_imported=client.DOCKER_SDK_IMPORT_ERROR is None, paramiko_imported='paramiko' in sys.modules,
            adapter_bound=hasattr(docker.api.client, 'SSHHTTPAdapter'),
            init_reads_module_name='SSHHTTPAdapter' in docker.api.client.APIClient.__init__.__code__.co_names)
client._add_ssh_transport('ssh://user@host')
from docker.transport.sshconn import SSHHTTPAdapter
seen.update(bound_after=getattr(docker.api.client, 'SSHHTTPAdapter', None) is SSHHTTPAdapter)
print(json.dumps(seen))
'''


def test_the_paramiko_guard_still_matches_the_docker_sdk_internals_it_relies_on():
    pytest.importorskip('paramiko')
    import json
    import os
    import subprocess
    import sys

    import docker
    environment = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
    run = subprocess.run([sys.executable, '-c', _PARAMIKO_GUARD_PROBE], capture_output=True, text=True, env=environment,
                         check=False)
    assert run.returncode == 0, 'the paramiko guard probe failed with docker %s:\n%s' % (docker.__version__, run.stderr)
    seen = json.loads(run.stdout)
    sdk = 'docker %s' % docker.__version__
    assert seen['sdk_imported'], '%s no longer imports with paramiko kept out: see the guard at the top of client.py' % sdk
    assert not seen['paramiko_imported'], ('%s imports paramiko some other way than docker.transport.sshconn: the guard '
                                           'no longer keeps it out of every module run' % sdk)
    assert not seen['adapter_bound'], ('%s binds docker.api.client.SSHHTTPAdapter without paramiko: the guard and '
                                       '_add_ssh_transport may no longer be needed' % sdk)
    assert seen['init_reads_module_name'], ('%s: APIClient.__init__ no longer reads the module name SSHHTTPAdapter, so '
                                            '_add_ssh_transport binding docker.api.client.SSHHTTPAdapter does not give '
                                            'it an ssh:// transport' % sdk)
    assert seen['bound_after'], ('%s: _add_ssh_transport did not bind docker.transport.sshconn.SSHHTTPAdapter as '
                                 'docker.api.client.SSHHTTPAdapter' % sdk)


class _Status(object):
    def __init__(self, status_code):
        self.status_code = status_code
        self.reason = 'Conflict'


class _RemovingApi(object):
    """A daemon's answers to remove_container and wait(condition=removed), recorded."""

    def __init__(self, remove_status, explanation, wait_status=None):
        self.remove_status, self.explanation, self.wait_status, self.waited = remove_status, explanation, wait_status, []

    def remove_container(self, container_id, force, v):  # pylint: disable=unused-argument
        from docker.errors import APIError
        raise APIError('%d error' % self.remove_status, response=_Status(self.remove_status), explanation=self.explanation)

    def wait(self, container_id, timeout, condition):  # pylint: disable=unused-argument
        from docker.errors import APIError
        self.waited.append((container_id, condition))
        if self.wait_status:
            raise APIError('%d error' % self.wait_status, response=_Status(self.wait_status), explanation='no such container')


class _Client(object):
    def __init__(self, api):
        self.api = api


@pytest.mark.parametrize('wait_status', [None, 404])
def test_a_container_another_client_is_removing_is_waited_for_until_it_is_gone(wait_status):
    api = _RemovingApi(409, 'removal of container c1 is already in progress', wait_status)
    client.remove_container(_Client(api), 'c1')
    assert api.waited == [('c1', 'removed')]


def test_a_container_already_gone_is_fine_and_other_conflicts_are_raised():
    from docker.errors import APIError
    gone = _RemovingApi(404, 'no such container')
    client.remove_container(_Client(gone), 'c1')
    assert gone.waited == []
    with pytest.raises(APIError):
        client.remove_container(_Client(_RemovingApi(409, 'container c1 is paused')), 'c1')


def test_tls_hostname_needs_a_tls_connection():
    with pytest.raises(Failure, match='tls_hostname applies to TLS connections'):
        client.connect(docker_host='tcp://127.0.0.1:9', tls_hostname='node1.cluster')


def test_the_request_log_notes_method_path_and_status_without_the_query():
    class Request(object):
        method, path_url = 'GET', '/v1.43/containers/json?all=1&filters=%7B%22label%22%3A+%5B%22secret%22%5D%7D'

    class Response(object):
        request, status_code = Request(), 200

    log = []
    client._note_request(log)(Response())
    assert log == ['GET /v1.43/containers/json 200']


def test_tls_hostname_is_the_name_the_https_pools_check():
    adapter = client._HostnameAdapter('node1.cluster')
    assert adapter.poolmanager.connection_pool_kw['assert_hostname'] == 'node1.cluster'
