"""The shared connection layer reaches every engine of the test bed, over unix sockets and over SSH."""

from __future__ import annotations

import os
import shutil

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


def ssh_behind_a_bastion(ssh, folder):
    """An ssh client configuration in which host kr-behind-bastion is reached by ProxyJump through kr-bastion (both the
    test bed's sshd), and an `ssh` first on PATH that reads it (the system ssh reads ~/.ssh/config of the passwd
    entry, not of $HOME, so the test cannot point it elsewhere) and notes each command line in ssh-calls.log."""
    options = ['  HostName 127.0.0.1', '  Port %d' % ssh['port'], '  User root', '  IdentityFile %s' % ssh['private_key'],
               '  IdentityAgent %s' % ssh['agent_socket'], '  UserKnownHostsFile %s' % ssh['known_hosts'],
               '  StrictHostKeyChecking yes', '  BatchMode yes']
    config = folder / 'ssh_config'
    lines = ['Host kr-bastion kr-behind-bastion'] + options + ['Host kr-behind-bastion', '  ProxyJump kr-bastion', '']
    config.write_text('\n'.join(lines))
    bin_dir = folder / 'bin'
    bin_dir.mkdir()
    wrapper = bin_dir / 'ssh'
    wrapper.write_text('#!/bin/sh\necho "$*" >> %s\nexec %s -F %s "$@"\n' % (folder / 'ssh-calls.log', shutil.which('ssh'), config))
    wrapper.chmod(0o755)
    return {'PATH': '%s:%s' % (bin_dir, os.environ['PATH']), 'SSH_AUTH_SOCK': ssh['agent_socket']}


def test_use_ssh_client_reaches_a_daemon_through_a_proxyjump_of_the_ssh_config(testbed, module, tmp_path):
    env = ssh_behind_a_bastion(testbed['ssh'], tmp_path)
    # the port is part of docker_host: without one the SDK runs ssh -p 22, which overrides Port of the configuration
    args = dict(docker_host='ssh://kr-behind-bastion:%d' % testbed['ssh']['port'], use_ssh_client=True, debug=True)
    through = module('container_info', args, env=env)
    assert not through.get('failed'), through
    assert 'kr-behind-bastion docker system dial-stdio' in (tmp_path / 'ssh-calls.log').read_text()
    assert any(line.startswith('GET /v') and '/containers/json 200' in line for line in through['docker_requests']), through
    assert not any('?' in line for line in through['docker_requests']), 'query strings are left out of the request log'
    paramiko = module('container_info', dict(args, use_ssh_client=False), env=env)
    assert paramiko.get('failed') and paramiko['msg'].startswith('Cannot reach the Docker daemon at ssh://kr-behind-bastion:')
    assert '\n' not in paramiko['msg'] and paramiko['docker_requests'] == []


def test_debug_lists_the_requests_of_a_failing_task_too(module, docker_hosts):
    result = module('container_exec', dict(name='krtest-never-made', argv=['true'], debug=True,
                                           docker_host=docker_hosts[0]['docker_host']))
    assert result.get('failed') and result['docker_requests'], result
    assert all(len(line.split()) == 3 for line in result['docker_requests'])
    quiet = module('container_info', dict(docker_host=docker_hosts[0]['docker_host']))
    assert 'docker_requests' not in quiet
