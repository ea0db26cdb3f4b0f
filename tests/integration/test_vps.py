"""VPS sessions on the runner nodes of the test bed, reached over real SSH (paramiko) from inside the runner's network
namespace, where the session's port is published."""

from __future__ import annotations

import contextlib
import uuid

import docker
import pytest

from support.ansible_runs import run_module, run_playbook, warnings_of
from roles_support import PYTHON, remove_environment
from runner_helpers import runner_node
from tarball_factory import TarballFactory
from vps_support import new_key, ssh, vps_env  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration

RUNNERS = ['runner1', 'runner2']


@pytest.fixture(params=RUNNERS)
def node(request, testbed):
    found = dict(runner_node(testbed, request.param))
    found['client'] = docker.DockerClient(base_url=found['docker_host'], version='auto', timeout=120)
    yield found
    found['client'].close()


@pytest.fixture
def session(node, vps_env):
    """Arguments of the vps module for a fresh session on the runner; the session is removed afterwards."""
    name = 's-%s' % uuid.uuid4().hex[:8]
    args = dict(name=name, env=vps_env['env'], shared_dir=vps_env['shared_dir'], state_dir=vps_env['state_dir'],
                docker_host=node['docker_host'])
    yield args
    for container in node['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + name}):
        container.remove(force=True)


def vps(args, **more):
    return run_module('vps', dict(args, **more), diff=True)


def test_a_session_lets_its_key_in_and_nothing_else_and_keeps_files_across_stop_start(node, session):
    private, public = new_key('alice@laptop')
    wrong_private, _wrong_public = new_key()
    made = vps(session, authorized_keys=[public])
    assert not made.get('failed') and made['changed'], made
    assert made['actions'][-2:] == ['create', 'start'] and made['status'] == 'running'
    assert not warnings_of(made), 'sshd was seen listening'
    port, host_key = made['port'], made['host_key']
    assert made['ssh_command'] == 'ssh -p %d root@%s' % (port, made['host'])
    assert made['diff']['before'] == {'state': 'absent'} and made['diff']['after']['state'] == 'started'

    login = ssh(node, port, private, 'id -u; cat /etc/kohakuriver/environment.json >/dev/null && echo env-ok; '
                                     'echo hello > /root/work.txt; ls -ld /shared', host_key=host_key)
    assert login['ok'] and login['rc'] == 0, login
    assert login['stdout'].splitlines()[:2] == ['0', 'env-ok']
    assert login['host_key'] == ' '.join(host_key.split()[:2])
    assert login['allowed'] == ['publickey'], 'only key logins are offered'
    assert not ssh(node, port, wrong_private)['ok']
    refused = ssh(node, port, password='root')
    assert not refused['ok'] and 'Authentication' in refused['error'], refused

    again = vps(session, authorized_keys=[public])
    assert not again['changed'] and again['actions'] == [] and again['port'] == port, again

    stopped = vps(session, state='stopped')
    assert stopped['changed'] and stopped['actions'] == ['stop'] and not stopped['running'], stopped
    assert not vps(session, state='stopped')['changed']
    restarted = vps(session)
    assert restarted['changed'] and restarted['actions'] == ['start'] and restarted['port'] == port, restarted
    assert not warnings_of(restarted), 'sshd of this start (not the earlier one) was seen listening'
    kept = ssh(node, port, private, 'cat /root/work.txt', host_key=host_key)
    assert kept['ok'] and kept['stdout'] == 'hello\n', kept

    removed = vps(session, state='absent')
    assert removed['changed'] and removed['actions'] == ['stop', 'remove'] and removed['status'] == 'absent', removed
    assert not node['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + session['name']})
    assert not vps(session, state='absent')['changed']


def stat_in(node, name, *paths):
    """Modification time and mode of files in the session, read through the Docker API (not through SSH)."""
    container = node['client'].containers.get('kohakuriver-vps-' + name)
    code, output = container.exec_run(['stat', '-c', '%n %Y %a %U'] + list(paths))
    assert code == 0, output
    return output.decode()


def snapshot_tags(node, env):
    return sorted(tag for image in node['client'].images.list(name='kohakuriver/%s' % env) for tag in image.tags
                  if ':vps-' in tag)


def test_a_docker_restart_keeps_endpoint_host_key_and_files_without_setup(node, session):
    private, public = new_key()
    made = vps(session, authorized_keys=[public])
    assert made['changed'], made
    files = stat_in(node, session['name'], '/root/.ssh', '/root/.ssh/authorized_keys', '/etc/kohakuriver/vps',
                    '/etc/kohakuriver/vps/ssh_host_ed25519_key', '/run/sshd')
    modes = [line.split()[2:] for line in files.splitlines()]
    assert modes == [['700', 'root'], ['600', 'root'], ['700', 'root'], ['600', 'root'], ['755', 'root']], files
    container = node['client'].containers.get('kohakuriver-vps-' + session['name'])
    assert container.attrs['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    assert container.attrs['Config']['Entrypoint'][:3] == ['/usr/sbin/sshd', '-D', '-e']

    container.restart(timeout=5)
    assert stat_in(node, session['name'], '/root/.ssh', '/root/.ssh/authorized_keys', '/etc/kohakuriver/vps',
                   '/etc/kohakuriver/vps/ssh_host_ed25519_key', '/run/sshd') == files, 'a restart changed files'
    login = ssh(node, made['port'], private, 'echo back', host_key=made['host_key'])
    assert login['ok'] and login['stdout'] == 'back\n', login
    assert not vps(session, authorized_keys=[public])['changed']


def test_a_malformed_key_is_refused_before_docker_is_called(tmp_path):
    _private, public = new_key()
    for bad, says in ((public + '\nssh-ed25519 AAAA injected', 'more than one line'),
                      (public.replace(' tester', " x'; touch /tmp/pwned; '"), 'quotes'),
                      (new_key()[0], 'private key')):
        result = run_module('vps', dict(name='never', env='never-made', docker_host='unix://%s/no-daemon.sock' % tmp_path,
                                        authorized_keys=[public, bad]))
        assert result.get('failed') and result['msg'].startswith('authorized_keys[1] ') and says in result['msg'], result
        assert 'Docker' not in result['msg'] and 'BEGIN' not in result['msg']


def test_an_image_without_sshd_fails_with_how_to_prepare_it(testbed, node, unique_env, shared_dir, tmp_path):
    factory = TarballFactory(testbed['host']['docker_host'], shared_dir / 'kohakuriver-containers')
    try:
        factory.make(unique_env)
        args = dict(name='nosshd-%s' % uuid.uuid4().hex[:6], env=unique_env, shared_dir=str(shared_dir),
                    state_dir=str(tmp_path / 'state'), docker_host=node['docker_host'], generate_key=True)
        result = run_module('vps', args)
        assert result.get('failed'), result
        assert result['msg'].startswith('The image of kohakuriver-vps-%s has no /usr/sbin/sshd. ' % args['name'])
        assert 'vps: true' in result['msg'], result['msg']
        assert 'private_key' not in result
        assert not node['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + args['name']})
    finally:
        remove_environment(testbed, unique_env)
        factory.cleanup()


def test_new_keys_replace_the_old_and_other_differences_are_only_reported(node, session):
    first_private, first = new_key('first')
    second_private, second = new_key('second')
    made = vps(session, authorized_keys=[first], cpus=1.0)
    port = made['port']
    changed = vps(session, authorized_keys=[second], cpus=1.0)
    assert changed['changed'] and changed['actions'] == ['authorized_keys'], changed
    assert [key['comment'] for key in changed['diff']['before']['authorized_keys']] == ['first']
    assert [key['comment'] for key in changed['diff']['after']['authorized_keys']] == ['second']
    assert ssh(node, port, second_private)['ok'] and not ssh(node, port, first_private)['ok']

    drifted = vps(session, authorized_keys=[second], cpus=2.0, port=port)
    assert not drifted['changed'] and drifted['drift'] == [dict(option='cpus', wanted=2.0, actual=1.0)], drifted
    assert any('cpus' in warning and 'never recreated' in warning for warning in warnings_of(drifted)), drifted
    assert node['client'].containers.get('kohakuriver-vps-' + session['name']).id == made['id']


def test_check_mode_changes_nothing(node, session):
    _private, public = new_key()
    planned = run_module('vps', dict(session, authorized_keys=[public]), check=True, diff=True)
    assert planned['changed'] and 'create' in planned['actions'] and planned['diff']['after']['state'] == 'started', planned
    assert not node['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + session['name']})
    made = vps(session, authorized_keys=[public])
    stop_planned = run_module('vps', dict(session, state='absent', snapshot=True), check=True)
    assert stop_planned['changed'] and stop_planned['actions'] == ['snapshot', 'stop', 'remove'], stop_planned
    container = node['client'].containers.get('kohakuriver-vps-' + session['name'])
    assert container.status == 'running' and container.id == made['id']
    assert not snapshot_tags(node, session['env'])


def test_snapshots_on_stop_keep_the_newest_of_this_session_only(node, session, vps_env):
    private, public = new_key()
    made = vps(session, authorized_keys=[public])
    other = dict(session, name=session['name'] + '-1')
    repository = 'kohakuriver/%s' % session['env']
    try:
        vps(other, authorized_keys=[public])
        first_other = vps(other, state='stopped', snapshot=True, snapshot_keep=1)['snapshot']
        assert ssh(node, made['port'], private, 'echo one > /root/state')['ok']
        first = vps(session, state='stopped', snapshot=True, snapshot_keep=1)
        assert first['actions'] == ['snapshot', 'stop'] and first['snapshot'].startswith(repository + ':vps-%s-' % session['name'])
        assert not vps(session, state='stopped', snapshot=True, snapshot_keep=1)['changed'], 'a stopped session is not committed again'
        vps(session)
        second = vps(session, state='stopped', snapshot=True, snapshot_keep=1)
        assert second['snapshot'] != first['snapshot'] and second['snapshots_removed'] == [first['snapshot']], second
        tags = snapshot_tags(node, session['env'])
        assert second['snapshot'] in tags and first['snapshot'] not in tags and first_other in tags, tags
        saved = node['client'].containers.run(second['snapshot'], ['cat', '/root/state'], entrypoint=[], remove=True)
        assert saved == b'one\n'
    finally:
        for tag in snapshot_tags(node, session['env']):
            node['client'].images.remove(tag)
        vps(other, state='absent')


def test_a_generated_key_is_returned_once_and_the_session_is_listed(node, session):
    made = vps(session, generate_key=True, ssh_host='runner.example')
    assert made['changed'] and made['private_key'].startswith('-----BEGIN OPENSSH PRIVATE KEY-----'), made.keys()
    assert made['ssh_command'] == 'ssh -p %d root@runner.example' % made['port']
    assert made['known_hosts'] == '[runner.example]:%d %s' % (made['port'], ' '.join(made['host_key'].split()[:2]))
    assert ssh(node, made['port'], made['private_key'], 'echo in')['stdout'] == 'in\n'
    again = vps(session, generate_key=True)
    assert not again['changed'] and 'private_key' not in again, again

    listed = run_module('vps_info', dict(docker_host=node['docker_host'], env=session['env'], ssh_host='runner.example'))
    mine = [item for item in listed['sessions'] if item['session'] == session['name']]
    assert len(mine) == 1 and not listed['changed'], listed
    for key in ('port', 'ssh_command', 'host_key', 'host_key_fingerprint', 'known_hosts', 'env', 'status', 'id'):
        assert mine[0][key] == made[key], key
    vps(session, state='stopped')
    stopped = run_module('vps_info', dict(docker_host=node['docker_host'], name=session['name']))['sessions']
    assert [(item['status'], item['port']) for item in stopped] == [('exited', made['port'])]


def test_the_playbook_creates_lists_stops_and_deletes_a_session(node, session, vps_env, tmp_path):
    key_dir = tmp_path / 'keys'
    common = dict(kr_node=node['name'], kr_vps=session['name'], kr_key_dir=str(key_dir))
    made = run_playbook('kohakuriver.docker.vps', vps_env['inventory'], dict(common, kr_env=session['env']))
    assert made.rc == 0 and made.changed(node['name']) > 0, made
    assert 'PRIVATE KEY' not in made.stdout + made.stderr
    key_file = key_dir / ('%s-%s' % (node['name'], session['name']))
    assert oct(key_file.stat().st_mode & 0o777) == '0o600' and oct(key_dir.stat().st_mode & 0o777) == '0o700'
    listed = run_module('vps_info', dict(docker_host=node['docker_host'], name=session['name']))['sessions'][0]
    printed = 'ssh -i %s -p %d root@%s' % (key_file, listed['port'], node['name'])
    assert printed in made.stdout and listed['host_key_fingerprint'] in made.stdout, made
    assert ssh(node, listed['port'], key_file.read_text(), 'echo via-playbook')['stdout'] == 'via-playbook\n'

    again = run_playbook('kohakuriver.docker.vps', vps_env['inventory'], dict(common, kr_env=session['env']))
    assert again.rc == 0 and again.changed(node['name']) == 0 and printed in again.stdout, again

    table = run_playbook('kohakuriver.docker.vps', vps_env['inventory'], dict(kr_node=node['name'], kr_state='list'))
    assert table.rc == 0 and session['name'] in table.stdout, table
    assert 'ssh -p %d root@%s' % (listed['port'], node['name']) in table.stdout, table

    stopped = run_playbook('kohakuriver.docker.vps', vps_env['inventory'], dict(common, kr_state='stopped'))
    assert stopped.rc == 0 and stopped.changed(node['name']) == 1 and 'its files are kept' in stopped.stdout, stopped
    deleted = run_playbook('kohakuriver.docker.vps', vps_env['inventory'], dict(common, kr_state='absent'))
    assert deleted.rc == 0 and deleted.changed(node['name']) == 1 and 'is removed' in deleted.stdout, deleted
    assert not node['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + session['name']})

    wrong = run_playbook('kohakuriver.docker.vps', vps_env['inventory'], dict(common, kr_env='krtest-never-packaged'))
    assert wrong.rc != 0 and 'krtest-never-packaged' in wrong.stdout, wrong


def test_a_taken_port_and_another_environment_fail_and_leave_things_as_they_were(node, session):
    _private, public = new_key()
    made = vps(session, authorized_keys=[public])
    other = dict(session, name=session['name'] + '-b')
    clash = vps(other, authorized_keys=[public], port=made['port'])
    assert clash.get('failed') and 'port is taken' in clash['msg'] and 'Choose another port' in clash['msg'], clash
    assert not node['client'].containers.list(all=True, filters={'name': 'kohakuriver-vps-' + other['name']})

    wrong_env = vps(session, state='absent', env='krtest-other-env')
    assert wrong_env.get('failed') and 'runs environment %s' % session['env'] in wrong_env['msg'], wrong_env
    assert node['client'].containers.get('kohakuriver-vps-' + session['name']).status == 'running'

    node['client'].containers.run(PYTHON, ['sleep', '60'], name='kohakuriver-vps-' + other['name'], detach=True)
    foreign = vps(other, authorized_keys=[public])
    assert foreign.get('failed') and 'left untouched' in foreign['msg'], foreign
    assert node['client'].containers.get('kohakuriver-vps-' + other['name']).status == 'running'
    node['client'].containers.get('kohakuriver-vps-' + other['name']).remove(force=True)


def test_one_session_with_a_broken_host_key_label_does_not_break_the_listing(testbed, unique_env):
    """Sessions made by hand with the VPS labels (as after an edit or a bad copy): the broken one reports a problem."""
    node = runner_node(testbed, 'runner1')
    good_key = new_key('host')[1]
    made = []
    api = docker.DockerClient(base_url=node['docker_host'], version='auto', timeout=120)
    with contextlib.closing(api):
        try:
            for session, host_key in (('%s-good' % unique_env, good_key), ('%s-bad' % unique_env, 'ssh-ed25519 broken')):
                made.append(api.containers.create(
                    'kohakuriver-test/busybox:latest', ['sleep', '600'], name='kohakuriver-vps-' + session,
                    labels={'io.kohakuriver.docker.managed': 'true', 'io.kohakuriver.docker.vps': session,
                            'io.kohakuriver.docker.env': unique_env, 'io.kohakuriver.docker.vps.port': '40022',
                            'io.kohakuriver.docker.vps.host_key': host_key}))
            listed = run_module('vps_info', dict(docker_host=node['docker_host'], env=unique_env, ssh_host='node1'))
        finally:
            for container in made:
                container.remove(force=True)
    assert not listed.get('failed'), listed
    found = dict((item['session'], item) for item in listed['sessions'])
    assert sorted(found) == ['%s-bad' % unique_env, '%s-good' % unique_env]
    good, bad = found['%s-good' % unique_env], found['%s-bad' % unique_env]
    assert 'problem' not in good and good['host_key'] == good_key and good['known_hosts'].startswith('[node1]:40022 ssh-ed25519 ')
    assert bad['problem'].startswith('label io.kohakuriver.docker.vps.host_key is not an SSH public key')
    assert bad['host_key'] is None and bad['known_hosts'] is None and bad['ssh_command'] == 'ssh -p 40022 root@node1'


def test_a_session_gets_the_ml_run_options_and_reports_their_drift(node, session):
    _private, public = new_key()
    ml = dict(shm_size='128m', ipc_mode='shareable', cap_add=['SYS_PTRACE'], ulimits=['nofile:4096:8192'],
              devices=['/dev/zero:/dev/kr-zero:r'], runtime='runc', gpus=[], available_gpus=[])
    made = vps(session, authorized_keys=[public], **ml)
    assert not made.get('failed') and made['status'] == 'running', made
    host = node['client'].api.inspect_container('kohakuriver-vps-' + session['name'])['HostConfig']
    assert host['ShmSize'] == 128 << 20 and host['IpcMode'] == 'shareable' and host['Runtime'] == 'runc'
    assert [cap.replace('CAP_', '') for cap in host['CapAdd']] == ['SYS_PTRACE'] and not host.get('DeviceRequests')
    assert [(u['Name'], u['Soft'], u['Hard']) for u in host['Ulimits']] == [('nofile', 4096, 8192)]
    assert host['Devices'] == [dict(PathOnHost='/dev/zero', PathInContainer='/dev/kr-zero', CgroupPermissions='r')]
    again = vps(session, authorized_keys=[public], **ml)
    assert not again['changed'] and not again.get('drift'), again
    drifted = vps(dict(session, **ml), authorized_keys=[public], shm_size='256m', ulimits=['nofile:4096'])
    assert not drifted['changed'] and [item['option'] for item in drifted['drift']] == ['shm_size', 'ulimits'], drifted
    refused = vps(session, authorized_keys=[public], gpus=['0'], available_gpus=[])
    assert refused.get('failed') and 'declares no GPUs' in refused['msg'], refused
