"""VPS requests validated before Docker is called, drift against a container's inspect, and the setup archive."""

from __future__ import annotations

import io
import tarfile

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.vps import file_archive, key_summaries, setup_files
from ansible_collections.kohakuriver.docker.plugins.module_utils.vps_options import (
    VpsRequest, default_ssh_host, describe, drift_warning, find_drift, known_hosts_line, snapshot_tag,
    snapshot_timestamp, sshd_argv, validate_session,
)

KEY = Ed25519PrivateKey.generate().public_key().public_bytes(
    serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode() + ' me@desk'


def params(**overrides):
    base = dict(name='alice-dev', env='my-env', state='started', authorized_keys=[KEY], generate_key=False, port=None,
                bind_address=None, ssh_host=None, shared_dir='/mnt/cluster-share', tarball_dir=None,
                state_dir='/var/lib/kohakuriver-docker', mounts=None, cpus=None, memory=None, gpus=None, sync=True,
                allow_stale=False, snapshot=False, snapshot_keep=3, stop_timeout=10,
                docker_host='unix:///var/run/docker.sock')
    base.update(overrides)
    return base


def test_sshd_runs_in_the_foreground_with_key_only_rules_on_its_command_line():
    argv = sshd_argv()
    assert argv[:3] == ['/usr/sbin/sshd', '-D', '-e']
    settings = dict(value.split('=', 1) for option, value in zip(argv[3::2], argv[4::2]) if option == '-o')
    assert settings['PermitRootLogin'] == 'prohibit-password'
    assert settings['PasswordAuthentication'] == settings['KbdInteractiveAuthentication'] == 'no'
    assert settings['ChallengeResponseAuthentication'] == settings['PermitEmptyPasswords'] == 'no'
    assert settings['AuthorizedKeysFile'] == '.ssh/authorized_keys'
    assert settings['HostKey'] == '/etc/kohakuriver/vps/ssh_host_ed25519_key'
    assert not any(arg in ('sh', '-c', 'bash') for arg in argv)


@pytest.mark.parametrize('name', ['a', 'alice-dev', 'Run.2_x', 'x' * 63])
def test_session_names(name):
    assert validate_session(name) == name


@pytest.mark.parametrize('name', ['', '-a', '.a', 'a b', 'a/b', 'a;rm', 'x' * 64, None, 'é'])
def test_bad_session_names(name):
    with pytest.raises(Failure):
        validate_session(name)


def test_snapshot_tags_belong_to_their_session_only():
    assert snapshot_tag('a', 1700000000) == 'vps-a-1700000000'
    assert snapshot_timestamp('vps-a-1700000000', 'a') == 1700000000
    assert snapshot_timestamp('vps-a-1-1700000000', 'a') is None
    assert snapshot_timestamp('vps-a-1-1700000000', 'a-1') == 1700000000
    assert snapshot_timestamp('vps-a.b-1', 'a-b') is None
    assert snapshot_timestamp('base', 'a') is None


def test_where_users_connect():
    assert default_ssh_host('10.0.0.21', 'unix:///var/run/docker.sock') == '10.0.0.21'
    assert default_ssh_host('0.0.0.0', 'tcp://node1.example:2376') == 'node1.example'
    assert default_ssh_host('::', 'ssh://root@node2.example:22') == 'node2.example'
    assert default_ssh_host('0.0.0.0', 'ssh://root@[fd00::2]:22') == 'fd00::2'
    assert default_ssh_host(None, 'unix:///var/run/docker.sock')
    assert known_hosts_line('node1', 40022, 'ssh-ed25519 AAAA comment') == '[node1]:40022 ssh-ed25519 AAAA'
    assert known_hosts_line('node1', None, 'ssh-ed25519 AAAA') is None


@pytest.mark.parametrize('overrides, says', [
    (dict(env=None), 'Give env'),
    (dict(env='Bad_Env'), 'not a valid environment name'),
    (dict(generate_key=True), 'not both'),
    (dict(authorized_keys=['ssh-ed25519 AAAA']), 'authorized_keys[0]'),
    (dict(authorized_keys=[]), 'authorized_keys is empty'),
    (dict(port=0), 'not a TCP port'),
    (dict(port=70000), 'not a TCP port'),
    (dict(bind_address='all'), 'not an IP address'),
    (dict(bind_address='10.0.0.1; rm'), 'not an IP address'),
    (dict(ssh_host='a b'), 'not a host name'),
    (dict(mounts=['/data:/shared']), '/shared already holds'),
    (dict(mounts=['relative:/x']), 'absolute path'),
    (dict(cpus=0), 'cpus must be greater than 0'),
    (dict(memory='lots'), 'memory'),
    (dict(gpus=['0,1']), 'gpus must be a list'),
    (dict(snapshot_keep=0), 'snapshot_keep'),
])
def test_bad_requests_are_refused_before_docker(overrides, says):
    with pytest.raises(Failure) as raised:
        VpsRequest(params(**overrides))
    assert says in raised.value.msg, raised.value.msg


def test_stop_and_remove_need_no_environment():
    assert VpsRequest(params(state='absent', env=None, authorized_keys=None)).run is None


def test_labels_and_wanted_options():
    request = VpsRequest(params(port=40022, bind_address='10.0.0.21', cpus=2.0, memory='1g', gpus=['1', '0'],
                                mounts=['/data:/data:ro']))
    labels = request.labels(40022, '10.0.0.21', 'ssh-ed25519 AAAA')
    assert labels['io.kohakuriver.docker.managed'] == 'true' and labels['io.kohakuriver.docker.vps'] == 'alice-dev'
    assert labels['io.kohakuriver.docker.env'] == 'my-env' and labels['io.kohakuriver.docker.vps.port'] == '40022'
    assert request.wanted() == dict(env='my-env', shared_data='/mnt/cluster-share/shared_data', port=40022,
                                    bind_address='10.0.0.21', cpus=2.0, memory=1 << 30, gpus=['0', '1'],
                                    mounts=['/data:/data:ro'])


def inspect(status='running', cpus=2.0, port='40022', env='my-env'):
    return {
        'Id': 'c0ffee', 'Name': '/kohakuriver-vps-alice-dev', 'Image': 'sha256:abc', 'Created': '2026-11-28T15:00:00.1Z',
        'State': {'Status': status},
        'Config': {'Image': 'kohakuriver/my-env:base', 'Labels': {
            'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.env': env,
            'io.kohakuriver.docker.vps': 'alice-dev', 'io.kohakuriver.docker.vps.port': port,
            'io.kohakuriver.docker.vps.bind_address': '0.0.0.0',
            'io.kohakuriver.docker.vps.host_key': KEY}},
        'HostConfig': {'NanoCpus': int(cpus * 1e9), 'Memory': 0, 'PortBindings': {'22/tcp': [{'HostIp': '0.0.0.0', 'HostPort': port}]},
                       'Mounts': [{'Type': 'bind', 'Source': '/mnt/cluster-share/shared_data', 'Target': '/shared'}],
                       'DeviceRequests': None},
        'NetworkSettings': {'Ports': {'22/tcp': [{'HostIp': '0.0.0.0', 'HostPort': port}, {'HostIp': '::', 'HostPort': port}]}
                            if status == 'running' else {}},
    }


def test_drift_names_only_what_the_request_gives():
    assert find_drift(VpsRequest(params()), inspect()) == []
    assert find_drift(VpsRequest(params(cpus=2.0, port=40022)), inspect()) == []
    drift = find_drift(VpsRequest(params(cpus=1.0, port=40023, env='other-env', gpus=['0'])), inspect())
    assert [item['option'] for item in drift] == ['cpus', 'env', 'gpus', 'port']
    assert drift[0] == dict(option='cpus', wanted=1.0, actual=2.0)
    assert find_drift(VpsRequest(params(shared_dir='/srv/share')), inspect())[0]['option'] == 'shared_data'
    assert 'never recreated' in drift_warning('kohakuriver-vps-alice-dev', drift)


def test_a_stopped_session_still_shows_its_endpoint():
    for attrs in (inspect(), inspect(status='exited')):
        found = describe(attrs, ssh_host='node1')
        assert (found['port'], found['bind_address'], found['ssh_command']) == (40022, '0.0.0.0', 'ssh -p 40022 root@node1')
        assert found['session'] == 'alice-dev' and found['env'] == 'my-env' and found['host_key_fingerprint'].startswith('SHA256:')
    listed = describe({'Id': 'c0ffee', 'Names': ['/kohakuriver-vps-alice-dev'], 'State': 'exited', 'Ports': [],
                       'Image': 'kohakuriver/my-env:base', 'Labels': inspect()['Config']['Labels'], 'Created': 1795878000},
                      ssh_host='node1')
    assert listed['port'] == 40022 and listed['created'] == '2026-11-28T15:00:00Z' and not listed['running']


def test_the_setup_archive_holds_root_owned_files_with_tight_modes():
    archive = tarfile.open(fileobj=io.BytesIO(file_archive(setup_files(('PRIVATE\n', 'ssh-ed25519 AAAA host'), KEY + '\n'))))
    members = dict((member.name, member) for member in archive.getmembers())
    modes = dict((name, oct(member.mode)) for name, member in members.items())
    assert modes == {'etc/kohakuriver': '0o755', 'etc/kohakuriver/vps': '0o700',
                     'etc/kohakuriver/vps/ssh_host_ed25519_key': '0o600',
                     'etc/kohakuriver/vps/ssh_host_ed25519_key.pub': '0o644', 'run/sshd': '0o755',
                     'root/.ssh': '0o700', 'root/.ssh/authorized_keys': '0o600'}
    assert all(member.uid == 0 and member.gid == 0 for member in members.values())
    assert archive.extractfile('root/.ssh/authorized_keys').read().decode() == KEY + '\n'
    assert 'root' not in members, 'root\'s home folder itself is left as the image has it'


def test_key_summaries_of_a_file_that_was_edited_by_hand():
    found = key_summaries('# mine\n%s\nnot a key\n\n' % KEY)
    assert [item['comment'] for item in found] == ['me@desk', 'line 3 is not a public key']
    assert found[0]['fingerprint'].startswith('SHA256:')


@pytest.mark.parametrize('bad_key', ['not-a-key', 'ssh-ed25519', 'ssh-ed25519 AAAA'])
def test_a_session_whose_host_key_label_is_broken_is_described_with_a_problem(bad_key):
    attrs = inspect()
    attrs['Config']['Labels']['io.kohakuriver.docker.vps.host_key'] = bad_key
    found = describe(attrs, ssh_host='node1')
    assert found['problem'].startswith('label io.kohakuriver.docker.vps.host_key is not an SSH public key; ')
    assert '\n' not in found['problem']
    assert found['host_key'] is None and found['host_key_fingerprint'] is None and found['known_hosts'] is None
    assert found['ssh_command'] == 'ssh -p 40022 root@node1', 'the rest of the entry is as usual'
    assert 'problem' not in describe(inspect(), ssh_host='node1')


@pytest.mark.parametrize('port', ['\u00b2', '\u0664\u0660\u0660\u0662\u0662', '4x'])
def test_a_port_label_that_is_not_an_ascii_number_gives_no_port(port):
    listed = describe({'Id': 'c0ffee', 'Names': ['/kohakuriver-vps-alice-dev'], 'State': 'exited', 'Ports': [],
                       'Labels': dict(inspect()['Config']['Labels'], **{'io.kohakuriver.docker.vps.port': port})})
    assert listed['port'] is None


@pytest.mark.parametrize('overrides', [dict(name='alice-dev\n'), dict(ssh_host='node1\n')])
def test_a_session_name_or_ssh_host_with_a_trailing_newline_is_refused(overrides):
    with pytest.raises(Failure, match='not'):
        VpsRequest(params(**overrides))


def test_memory_0_asks_for_no_limit_as_the_container_module_reads_it():
    assert find_drift(VpsRequest(params(memory='0')), inspect()) == []
    limited = inspect()
    limited['HostConfig']['Memory'] = 1 << 30
    assert find_drift(VpsRequest(params(memory='0')), limited) == [dict(option='memory', wanted=0, actual=1 << 30)]
    assert find_drift(VpsRequest(params(memory=None)), limited) == []


def test_drift_of_the_ml_options_a_request_names():
    container = inspect()
    container['HostConfig'].update(ShmSize=1 << 30, IpcMode='host', CapAdd=['CAP_IPC_LOCK'], Runtime='runc',
                                   Ulimits=[{'Name': 'memlock', 'Soft': -1, 'Hard': -1}], DeviceRequests=[{'Count': 2}])
    same = VpsRequest(params(shm_size='1g', ipc_mode='host', capabilities=['ipc_lock'], runtime='runc',
                             ulimits=['memlock:-1:-1'], gpus=['count=2']))
    assert find_drift(same, container) == []
    changed = VpsRequest(params(shm_size='2g', ipc_mode='private', devices=['/dev/zero'], ulimits=['memlock:-1']))
    assert [item['option'] for item in find_drift(changed, container)] == ['devices', 'ipc_mode', 'shm_size']
    assert find_drift(VpsRequest(params(shm_size='2g')), container) == [dict(option='shm_size', wanted=2 << 30, actual=1 << 30)]
