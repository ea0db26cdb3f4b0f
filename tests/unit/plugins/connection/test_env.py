"""The env connection's decisions made before any Docker call: options, pipelining over TLS, the exec user."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleConnectionFailure
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader

NO_DAEMON = 'unix:///var/tmp/kohakuriver-no-such-daemon.sock'


def connection(**variables):
    loaded = connection_loader.get('kohakuriver.docker.env', PlayContext())
    loaded.set_options(var_options=dict({'inventory_hostname': 'ds', 'kohakuriver_docker_host': NO_DAEMON}, **variables))
    return loaded


def test_the_options_default_to_the_local_daemon_root_and_pipelining():
    loaded = connection_loader.get('kohakuriver.docker.env', PlayContext())
    loaded.set_options(var_options={'inventory_hostname': 'ds'})
    assert loaded.transport == 'kohakuriver.docker.env'
    assert loaded.get_option('remote_addr') == 'ds'
    assert loaded.get_option('docker_host') == 'unix:///var/run/docker.sock'
    assert loaded.get_option('remote_user') == 'root'
    assert loaded.get_option('adopt') is False
    assert loaded.is_pipelining_enabled()
    assert loaded._exec_user() == ''


def test_the_inventory_variables_of_the_contract_set_the_options():
    loaded = connection(ansible_host='other-env', kohakuriver_docker_api_version='1.41', kohakuriver_docker_timeout=5,
                        kohakuriver_env_adopt=True, ansible_user='app', kohakuriver_docker_ca_path='/ca.pem')
    assert (loaded.get_option('remote_addr'), loaded.get_option('api_version'), loaded.get_option('timeout')) == ('other-env', '1.41', 5)
    assert loaded.get_option('adopt') is True and loaded.get_option('ca_path') == '/ca.pem'
    assert loaded._exec_user() == 'app'


@pytest.mark.parametrize('variable', ['kohakuriver_docker_tls', 'kohakuriver_docker_validate_certs'])
def test_pipelining_is_off_over_tls_and_stdin_is_refused_there_in_one_line(variable):
    loaded = connection(**{variable: True})
    assert not loaded.is_pipelining_enabled()
    loaded._connected = True  # the refusal comes before any Docker call
    with pytest.raises(AnsibleConnectionFailure, match='stdin cannot be sent over a TLS tcp:// connection') as raised:
        loaded.exec_command('/bin/sh -c cat', in_data=b'payload')
    assert '\n' not in str(raised.value.message)


def test_pipelining_can_be_turned_off():
    assert not connection(ansible_pipelining=False).is_pipelining_enabled()


def test_an_invalid_environment_name_is_refused_before_connecting():
    with pytest.raises(AnsibleConnectionFailure, match='is not a valid environment name'):
        connection(ansible_host="Bad Name's")._connect()


def test_an_unreachable_daemon_is_one_line():
    with pytest.raises(AnsibleConnectionFailure) as raised:
        connection()._connect()
    assert str(raised.value.message).startswith('Cannot reach the Docker daemon at %s' % NO_DAEMON)
    assert '\n' not in str(raised.value.message)
