"""The shared connection layer reaches every engine of the test bed, over unix sockets and over SSH."""

from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import client

pytestmark = pytest.mark.integration


def test_every_engine_answers_with_the_version_the_test_bed_reports(docker_hosts):
    for node in docker_hosts:
        docker = client.connect(docker_host=node['docker_host'])
        try:
            assert docker.version()['ApiVersion'] == node['api_version'], node['name']
        finally:
            docker.close()


def test_the_runner_engines_are_two_generations(testbed):
    majors = sorted(int(runner['engine_version'].split('.')[0]) for runner in testbed['runners'][:2])
    assert majors[0] <= 20 < 25 <= majors[1]


def test_an_ssh_docker_host_is_reached_through_paramiko(testbed, monkeypatch):
    ssh = testbed['ssh']
    monkeypatch.setenv('SSH_AUTH_SOCK', ssh['agent_socket'])
    monkeypatch.setenv('HOME', ssh['home'])
    docker = client.connect(docker_host=ssh['docker_host'], timeout=30)
    try:
        assert docker.version()['ApiVersion'] == testbed['host']['api_version']
        assert type(docker.api.adapters['http+docker://ssh']).__module__ == 'docker.transport.sshconn'
    finally:
        docker.close()


def test_a_module_reports_an_unreachable_daemon_in_one_line(module, tmp_path):
    address = 'unix://%s' % (tmp_path / 'nobody.sock')
    result = module('container_info', {'docker_host': address})
    assert result['failed']
    assert result['msg'].startswith('Cannot reach the Docker daemon at %s' % address)


@pytest.mark.parametrize('api_version', ['abc', '1.41\n'])
def test_a_malformed_api_version_is_named_not_reported_as_an_unreachable_daemon(module, docker_hosts, api_version):
    for name, args in (('container_info', {}), ('container_exec', {'name': 'krtest-never-made', 'argv': ['true']})):
        result = module(name, dict(args, docker_host=docker_hosts[0]['docker_host'], api_version=api_version))
        assert result['failed'], name
        assert result['msg'] == 'api_version %r is not valid: use auto or a Docker API version like 1.41.' % (api_version,)


def test_a_dotted_api_version_the_daemon_speaks_is_used(module, docker_hosts):
    result = module('container_info', {'docker_host': docker_hosts[0]['docker_host'],
                                       'api_version': docker_hosts[0]['api_version']})
    assert not result.get('failed'), result
