"""Modules reach a tcp:// daemon over mutual TLS, and refuse or are refused when a certificate does not fit.

A throwaway CA (openssl CLI) signs a server certificate for 127.0.0.1 and a client certificate; TLSProxy
(tls_proxy.py) serves that server certificate on 127.0.0.1, demands the client certificate, and forwards
every connection to runner1's unix socket. The modules run with the environment as it is (CA bundle variables
included, which requests would let replace the TLS options: docker/docker-py#2433); the last test sets an
impostor bundle on purpose.
"""

from __future__ import annotations

import shutil
import subprocess

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import container_name
from connection_plugin_support import docker_cli, env_inventory, run_json, write_playbook
from container_support import removed_afterwards
from runner_helpers import runner_node
from support.ansible_runs import run_module
from tls_proxy import TLSProxy

pytestmark = pytest.mark.integration

NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1']
CLIENT_NAME = 'kohakuriver-test-client'


def self_signed(*args):
    subprocess.run(['openssl', 'req', '-x509'] + NEW_KEY + list(args), check=True, capture_output=True)


def make_ca(folder, name):
    """A new CA in folder: (certificate path, key path)."""
    folder.mkdir()
    cert, key = folder / 'ca.pem', folder / 'ca-key.pem'
    self_signed('-subj', '/CN=%s' % name, '-keyout', str(key), '-out', str(cert))
    return cert, key


def issue(ca, name, folder, *extensions):
    """A new key pair signed by ca = (certificate, key), written as folder/cert.pem and folder/key.pem."""
    ca_cert, ca_key = ca
    folder.mkdir()
    extension_args = []
    for extension in ('basicConstraints=critical,CA:FALSE',) + extensions:
        extension_args += ['-addext', extension]
    self_signed('-CA', str(ca_cert), '-CAkey', str(ca_key), '-subj', '/CN=%s' % name,
                '-keyout', str(folder / 'key.pem'), '-out', str(folder / 'cert.pem'), *extension_args)
    return str(folder / 'cert.pem'), str(folder / 'key.pem')


@pytest.fixture
def pki(tmp_path):
    """Paths of the test certificates; cert_dir is a DOCKER_CERT_PATH folder (ca.pem, cert.pem, key.pem)."""
    ca = make_ca(tmp_path / 'ca', 'kohakuriver test CA')
    server_cert, server_key = issue(ca, '127.0.0.1', tmp_path / 'server',
                                    'subjectAltName=IP:127.0.0.1', 'extendedKeyUsage=serverAuth')
    client_cert, client_key = issue(ca, CLIENT_NAME, tmp_path / 'client', 'extendedKeyUsage=clientAuth')
    shutil.copy(ca[0], tmp_path / 'client' / 'ca.pem')
    impostor_ca = make_ca(tmp_path / 'impostor', 'impostor CA')[0]
    return dict(ca=str(ca[0]), server_cert=server_cert, server_key=server_key, client_cert=client_cert,
                client_key=client_key, cert_dir=str(tmp_path / 'client'), impostor_ca=str(impostor_ca))


@pytest.fixture
def runner1(testbed):
    return runner_node(testbed, 'runner1')


@pytest.fixture
def proxy(pki, runner1):
    """A TLSProxy in front of runner1, stopped with its threads joined after the test."""
    socket_path = runner1['docker_host'][len('unix://'):]
    started = TLSProxy(socket_path, pki['server_cert'], pki['server_key'], pki['ca']).start()
    yield started
    started.stop()


@pytest.fixture
def env_container(runner1, testbed, unique_env):
    """A container named as unique_env's environment container, created (never started) on runner1, then removed."""
    client = docker.DockerClient(base_url=runner1['docker_host'], version='auto')
    try:
        container = client.containers.create(testbed['images']['busybox'], name='kohakuriver-env-%s' % unique_env)
        yield container
        container.remove(force=True)
    finally:
        client.close()


def assert_unreachable(result, address):
    assert result.get('failed'), result
    assert result['msg'].startswith('Cannot reach the Docker daemon at %s: ' % address), result['msg']
    assert '\n' not in result['msg']


def test_container_info_over_mutual_tls_sees_what_the_unix_socket_sees(
        module, proxy, pki, runner1, env_container, unique_env):
    over_tls = module('container_info', dict(
        name=unique_env, docker_host=proxy.address, tls=True, validate_certs=True, ca_path=pki['ca'],
        client_cert=pki['client_cert'], client_key=pki['client_key'],
    ))
    over_unix = module('container_info', dict(name=unique_env, docker_host=runner1['docker_host']))
    assert not over_tls.get('failed'), over_tls
    assert [found['id'] for found in over_tls['containers']] == [env_container.id]
    assert over_tls['containers'] == over_unix['containers']
    assert set(proxy.client_names) == {CLIENT_NAME}


def test_docker_cert_path_alone_supplies_the_ca_and_the_client_pair(module, proxy, pki, env_container, unique_env):
    result = module('container_info', dict(name=unique_env, docker_host=proxy.address, validate_certs=True),
                    env={'DOCKER_CERT_PATH': pki['cert_dir']})
    assert not result.get('failed'), result
    assert [found['id'] for found in result['containers']] == [env_container.id]
    assert set(proxy.client_names) == {CLIENT_NAME}


def test_a_server_certificate_from_another_ca_fails_in_one_line(module, proxy, pki):
    result = module('container_info', dict(
        docker_host=proxy.address, validate_certs=True, ca_path=pki['impostor_ca'],
        client_cert=pki['client_cert'], client_key=pki['client_key'],
    ))
    assert_unreachable(result, proxy.address)
    assert 'CERTIFICATE_VERIFY_FAILED' in result['msg']
    assert proxy.client_names == []


def test_the_daemon_side_refuses_a_client_without_certificate(module, proxy, pki):
    """The proxy is stopped, its threads joined, before its refusals are read."""
    result = module('container_info', dict(docker_host=proxy.address, validate_certs=True, ca_path=pki['ca']))
    assert_unreachable(result, proxy.address)
    proxy.stop()
    assert proxy.client_names == []
    assert any('PEER_DID_NOT_RETURN_A_CERTIFICATE' in refusal for refusal in proxy.refusals), proxy.refusals


@pytest.mark.parametrize('validate_certs', [True, False], ids=['ca_path', 'tls_without_validation'])
def test_requests_ca_bundle_does_not_override_the_tls_options(module, proxy, pki, validate_certs):
    result = module('container_info', dict(
        docker_host=proxy.address, tls=True, validate_certs=validate_certs, ca_path=pki['ca'],
        client_cert=pki['client_cert'], client_key=pki['client_key'],
    ), env={'REQUESTS_CA_BUNDLE': pki['impostor_ca']})
    assert not result.get('failed'), result
    assert set(proxy.client_names) == {CLIENT_NAME}


def test_tls_hostname_is_the_name_checked_on_the_daemons_certificate(module, pki, runner1, tmp_path):
    """A daemon reached by its address whose certificate names only a DNS name: refused, unless tls_hostname gives
    that name; another name is refused again (the check is not simply off)."""
    ca = (pki['ca'], str(tmp_path / 'ca' / 'ca-key.pem'))
    cert, key = issue(ca, 'docker-daemon.kr-test', tmp_path / 'named', 'subjectAltName=DNS:docker-daemon.kr-test',
                      'extendedKeyUsage=serverAuth')
    named = TLSProxy(runner1['docker_host'][len('unix://'):], cert, key, pki['ca']).start()
    try:
        args = dict(docker_host=named.address, validate_certs=True, ca_path=pki['ca'], client_cert=pki['client_cert'],
                    client_key=pki['client_key'])
        by_address = module('container_info', args)
        assert_unreachable(by_address, named.address)
        assert 'docker-daemon.kr-test' in by_address['msg'] or 'match' in by_address['msg'].lower(), by_address['msg']
        by_name = module('container_info', dict(args, tls_hostname='docker-daemon.kr-test'))
        assert not by_name.get('failed'), by_name
        from_env = module('container_info', args, env={'DOCKER_TLS_HOSTNAME': 'docker-daemon.kr-test'})
        assert not from_env.get('failed'), from_env
        assert_unreachable(module('container_info', dict(args, tls_hostname='impostor.kr-test')), named.address)
    finally:
        named.stop()
    assert set(named.client_names) == {CLIENT_NAME}


def test_tls_hostname_without_tls_is_refused_in_one_line(module, runner1):
    result = module('container_info', dict(docker_host=runner1['docker_host'], tls_hostname='node1.cluster'))
    assert result.get('failed') and result['msg'].startswith('tls_hostname applies to TLS connections'), result


def test_the_env_connection_plugin_carries_modules_and_files_over_mutual_tls(proxy, pki, runner1, testbed, unique_env,
                                                                             tmp_path):
    """An inventory host that is an environment on a tcp:// daemon behind mutual TLS: a module, put_file (copy) and
    fetch_file (fetch) go through the proxy with our client certificate; the docker CLI on the unix socket sees it."""
    with removed_afterwards(runner1['docker_host'], unique_env):
        made = run_module('container', dict(docker_host=runner1['docker_host'], name=unique_env, pull='never',
                                            image=testbed['images']['python'], state='started'))
        assert not made.get('failed'), made
        source = tmp_path / 'over tls.txt'
        source.write_text('through mutual TLS\n')
        tasks = [
            {'name': 'copy', 'ansible.builtin.copy': {'src': str(source), 'dest': '/opt/over tls.txt', 'mode': '0644'}},
            {'name': 'command', 'ansible.builtin.command': {'argv': ['cat', '/etc/hostname']}, 'changed_when': False},
            {'name': 'fetch', 'ansible.builtin.fetch': {'src': '/opt/over tls.txt', 'dest': str(tmp_path / 'back.txt'),
                                                        'flat': True}},
        ]
        playbook = write_playbook(tmp_path / 'tls.yml', [{'hosts': unique_env, 'gather_facts': False, 'tasks': tasks}])
        inventory = env_inventory(tmp_path / 'inventory.json', {unique_env: {
            'kohakuriver_docker_host': proxy.address, 'kohakuriver_docker_tls': True,
            'kohakuriver_docker_validate_certs': True, 'kohakuriver_docker_ca_path': pki['ca'],
            'kohakuriver_docker_client_cert': pki['client_cert'], 'kohakuriver_docker_client_key': pki['client_key'],
            'ansible_python_interpreter': '/usr/bin/python3'}})
        run = run_json(playbook, inventory, env=dict(ANSIBLE_HOME=str(tmp_path / 'ansible'),
                                                     ANSIBLE_LOCAL_TEMP=str(tmp_path / 'local')))
        assert run.rc == 0, (run.stdout, run.stderr)
        assert run.results(unique_env)['copy']['changed'] and (tmp_path / 'back.txt').read_text() == 'through mutual TLS\n'
        assert docker_cli(runner1['docker_host'], 'exec', container_name(unique_env), 'cat', '/opt/over tls.txt') == \
            (0, 'through mutual TLS\n')
    assert set(proxy.client_names) == {CLIENT_NAME}
