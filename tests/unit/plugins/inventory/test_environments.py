"""The pure parts of the environments inventory plugin: its configuration, which containers are ours, host variables."""

from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.inventory.environments import (
    environment_of, environment_record, host_variables, settle_filters, settle_hosts,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

OURS = {'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.env': 'data'}


def inspected(name='/kohakuriver-env-data', labels=None, status='running'):
    return {'Name': name, 'Id': 'c' * 64, 'Image': 'sha256:' + 'i' * 64, 'Created': '2026-01-01T00:00:00Z',
            'State': {'Status': status, 'Running': status == 'running'},
            'Config': {'Image': 'python:3.12', 'Labels': dict(OURS) if labels is None else labels}}


def test_a_host_entry_gets_the_modules_defaults_and_its_address_as_name():
    host, = settle_hosts([{'docker_host': 'tcp://h:2376', 'validate_certs': True, 'ca_path': '/ca.pem'}])
    assert host == {'name': 'tcp://h:2376', 'docker_host': 'tcp://h:2376', 'api_version': 'auto', 'timeout': 60, 'tls': False,
                    'validate_certs': True, 'ca_path': '/ca.pem', 'client_cert': None, 'client_key': None, 'prefix': ''}
    assert settle_hosts([{}])[0]['docker_host'] == 'unix:///var/run/docker.sock'


@pytest.mark.parametrize('entries, says', [
    ([], 'hosts must be a non-empty list'),
    (['unix:///x'], 'hosts[1] must be a dict'),
    ([{'docker_url': 'unix:///x'}], 'hosts[1] has unknown option(s) docker_url'),
    ([{'docker_host': 'http://x'}], 'hosts[1].docker_host '),
    ([{'timeout': 'soon'}], 'hosts[1].timeout '),
    ([{'tls': 'yes'}], 'hosts[1].tls must be true or false'),
    ([{'name': 'a'}, {'name': 'a', 'docker_host': 'unix:///y'}], 'hosts[2]: Host a is listed twice'),
])
def test_a_bad_host_entry_is_one_line_naming_it(entries, says):
    with pytest.raises(Failure) as raised:
        settle_hosts(entries)
    assert says in raised.value.msg and '\n' not in raised.value.msg


def test_filters_keep_their_order_and_kind():
    assert settle_filters([{'exclude': 'a'}, {'include': 'b'}]) == [(False, 'a'), (True, 'b')]
    assert settle_filters(None) == []
    for bad in ({'include': 'a', 'exclude': 'b'}, {'match': 'a'}, {'include': ''}, 'a'):
        with pytest.raises(Failure):
            settle_filters([bad])


@pytest.mark.parametrize('container, env', [
    (inspected(), 'data'),
    (inspected(labels={}), None),  # our name, no label: made by hand or by KohakuRiver
    (inspected(labels=dict(OURS, **{'io.kohakuriver.docker.managed': 'false'})), None),
    (inspected(labels=dict(OURS, **{'io.kohakuriver.docker.env': 'other'})), None),
    (inspected(name='/kohakuriver-task-1'), None),  # our label on a task container
    (inspected(name='/kohakuriver-env-'), None),
])
def test_only_our_environment_containers_are_environments(container, env):
    assert environment_of(container) == env


def test_host_variables_say_what_the_environment_is_and_how_to_reach_it():
    host, = settle_hosts([{'name': 'h', 'docker_host': 'tcp://h:2376', 'tls': True, 'client_cert': '/c', 'client_key': '/k'}])
    variables = host_variables(host, environment_record(host, inspected(status='exited')))
    assert variables['ansible_connection'] == 'kohakuriver.docker.env' and variables['ansible_host'] == 'data'
    assert variables['kohakuriver_docker_tls'] is True and variables['kohakuriver_docker_client_key'] == '/k'
    assert 'kohakuriver_docker_ca_path' not in variables
    assert variables['kohakuriver_env_running'] is False and variables['kohakuriver_env_status'] == 'exited'
    assert variables['kohakuriver_env_image'] == 'python:3.12' and variables['kohakuriver_env_host'] == 'h'
    assert variables['kohakuriver_env_container'] == 'kohakuriver-env-data'
