"""kohakuriver.docker.container and container_info against the real engines of the test bed."""

from __future__ import annotations

import contextlib
import io
import tarfile

import pytest

from support.ansible_runs import run_module, warnings_of
from container_support import (
    ENGINES, UNREACHABLE, RegistryImage, client, drop_local_image, engine_fixture, exec_output, inspect, make_foreign,
    one_line, pretty, removed_afterwards, ssh_environment,
)

pytestmark = pytest.mark.integration


@pytest.fixture(params=ENGINES)
def engine(request, docker_hosts):
    return engine_fixture(docker_hosts, request.param)


@pytest.fixture
def host_engine(docker_hosts):
    return engine_fixture(docker_hosts, 'host')


@pytest.fixture
def busybox(host_images):
    """The test bed's busybox, on the Host too (runners have it loaded), so that pull: never finds it everywhere."""
    return host_images['busybox']


@pytest.fixture
def env(engine, unique_env):
    with removed_afterwards(engine['docker_host'], unique_env):
        yield unique_env


@pytest.fixture
def host_env(host_engine, unique_env):
    with removed_afterwards(host_engine['docker_host'], unique_env):
        yield unique_env


def container(engine, **args):
    args.setdefault('docker_host', engine['docker_host'])
    check, diff = args.pop('_check', False), args.pop('_diff', False)
    return run_module('container', args, check=check, diff=diff)


def test_lifecycle_is_idempotent_on_every_engine(engine, env, busybox):
    created = container(engine, name=env, image=busybox, pull='never')
    assert created['changed'] and created['actions'] == ['create', 'start'], pretty(created)
    info = created['container']
    assert info['name'] == 'kohakuriver-env-' + env and info['env'] == env and info['image'] == busybox
    assert info['status'] == 'running' and info['managed'] and info['id'] and info['created'].endswith('Z')
    assert info['labels']['io.kohakuriver.docker.managed'] == 'true'
    assert info['labels']['io.kohakuriver.docker.env'] == env
    attrs = inspect(engine['docker_host'], env)
    assert attrs['Id'] == info['id'] and attrs['State']['Running']
    assert attrs['HostConfig']['Init'] is True
    assert 'init' in exec_output(engine['docker_host'], env, ['cat', '/proc/1/cmdline'])

    again = container(engine, name=env, image=busybox, pull='never')
    assert not again['changed'] and again['actions'] == [] and again['drift'] == [], pretty(again)

    stopped = container(engine, name=env, state='stopped')
    assert stopped['changed'] and stopped['container']['status'] == 'exited'
    assert inspect(engine['docker_host'], env)['State']['ExitCode'] == 0, 'docker stop ends the keep-alive loop cleanly'
    assert not container(engine, name=env, state='stopped')['changed']
    assert not container(engine, name=env, state='present')['changed']
    started = container(engine, name=env)
    assert started['actions'] == ['start'] and started['container']['status'] == 'running'
    assert started['container']['id'] == info['id']

    removed = container(engine, name=env, state='absent')
    assert removed['changed'] and removed['actions'] == ['stop', 'remove'] and removed['container']['status'] == 'absent'
    assert inspect(engine['docker_host'], env) is None
    missing = container(engine, name=env, state='absent')
    assert not missing['changed'] and not missing.get('failed') and missing['container']['status'] == 'absent'


def test_present_and_stopped_create_without_starting(host_engine, host_env, busybox):
    result = container(host_engine, name=host_env, image=busybox, state='present')
    assert result['actions'] == ['create'] and result['container']['status'] == 'created'
    assert not container(host_engine, name=host_env, image=busybox, state='stopped')['changed']


def test_options_are_applied_and_a_drifting_container_is_kept(engine, env, busybox, tmp_path):
    options = dict(env={'GREETING': 'hello', 'N': 1}, labels={'team': 'ml'}, cpus=0.5, memory='64m',
                   restart_policy='unless-stopped', mounts=[dict(source=str(tmp_path), target='/data', read_only=True)])
    created = container(engine, name=env, image=busybox, **options)
    assert created['changed'], pretty(created)
    attrs = inspect(engine['docker_host'], env)
    assert 'GREETING=hello' in attrs['Config']['Env'] and 'N=1' in attrs['Config']['Env']
    assert attrs['Config']['Labels']['team'] == 'ml'
    assert attrs['HostConfig']['NanoCpus'] == 500000000 and attrs['HostConfig']['Memory'] == 64 * 1024 ** 2
    assert attrs['HostConfig']['RestartPolicy']['Name'] == 'unless-stopped'
    assert exec_output(engine['docker_host'], env, ['sh', '-c', 'touch /data/x 2>&1; echo $?']).strip() != '0'
    assert not container(engine, name=env, image=busybox, **options)['changed']

    drifting = dict(options)
    drifting.update(env={'GREETING': 'bye', 'N': 1}, memory='128m', labels={'team': 'cv'}, mounts=[])
    kept = container(engine, name=env, image=busybox, **drifting)
    assert not kept['changed'] and kept['container']['id'] == attrs['Id'], pretty(kept)
    assert sorted(item['option'] for item in kept['drift']) == ['env', 'labels', 'memory', 'mounts']
    assert dict((d['option'], d) for d in kept['drift'])['env'] == dict(option='env', wanted={'GREETING': 'bye'},
                                                                        actual={'GREETING': 'hello'})
    assert any('recreate: true' in warning for warning in warnings_of(kept))
    assert inspect(engine['docker_host'], env)['Id'] == attrs['Id']


def test_recreate_replaces_a_drifting_container_and_puts_it_back_when_that_fails(engine, env, busybox, tmp_path):
    first = container(engine, name=env, image=busybox, env={'V': '1'})['container']
    exec_output(engine['docker_host'], env, ['touch', '/customised'])

    broken = container(engine, name=env, image=busybox, env={'V': '2'}, recreate=True,
                       mounts=[dict(source=str(tmp_path / 'no-such-folder'), target='/data')])
    assert broken.get('failed') and one_line(broken['msg']) and 'Cannot create' in broken['msg'], pretty(broken)
    back = inspect(engine['docker_host'], env)
    assert back['Id'] == first['id'] and back['State']['Running'] and back['Name'] == '/kohakuriver-env-' + env
    assert exec_output(engine['docker_host'], env, ['ls', '/customised']).strip() == '/customised'

    recreated = container(engine, name=env, image=busybox, env={'V': '2'}, recreate=True)
    assert recreated['changed'] and recreated['actions'] == ['recreate', 'start'], pretty(recreated)
    assert recreated['container']['id'] != first['id'] and recreated['container']['status'] == 'running'
    assert 'V=2' in inspect(engine['docker_host'], env)['Config']['Env']
    assert 'No such file' in exec_output(engine['docker_host'], env, ['ls', '/customised'])
    assert not container(engine, name=env, image=busybox, env={'V': '2'}, recreate=True)['changed']


def test_check_mode_changes_nothing_and_diff_shows_before_and_after(engine, env, busybox):
    would = container(engine, name=env, image=busybox, memory='32m', _check=True, _diff=True)
    assert would['changed'] and would['actions'] == ['create', 'start'], pretty(would)
    assert would['diff'] == dict(before=dict(state='absent'),
                                 after=dict(state='started', image=busybox, memory=32 * 1024 ** 2))
    assert inspect(engine['docker_host'], env) is None

    container(engine, name=env, image=busybox)
    would_stop = container(engine, name=env, state='stopped', _check=True, _diff=True)
    assert would_stop['changed'] and would_stop['diff']['after']['state'] == 'stopped'
    assert inspect(engine['docker_host'], env)['State']['Running']
    would_remove = container(engine, name=env, state='absent', _check=True, _diff=True)
    assert would_remove['diff'] == dict(before=dict(state='started', image=busybox), after=dict(state='absent'))
    assert inspect(engine['docker_host'], env)['State']['Running']
    would_recreate = container(engine, name=env, image=busybox, env={'X': '1'}, recreate=True, _check=True)
    assert would_recreate['actions'] == ['recreate', 'start']
    assert 'X=1' not in (inspect(engine['docker_host'], env)['Config']['Env'] or [])


def test_a_foreign_container_is_never_touched_without_adopt(engine, env, busybox):
    foreign_id = make_foreign(engine['docker_host'], env, busybox)
    for args in (dict(state='started', image=busybox), dict(state='stopped'), dict(state='absent'),
                 dict(state='started', image=busybox, env={'X': '1'}, recreate=True)):
        result = container(engine, name=env, **args)
        assert result.get('failed') and 'adopt: true' in result['msg'] and one_line(result['msg']), pretty(result)
        assert result['container']['managed'] is False
        attrs = inspect(engine['docker_host'], env)
        assert attrs['Id'] == foreign_id and attrs['State']['Running']

    listed = run_module('container_info', dict(docker_host=engine['docker_host'], name=env))
    assert [(c['id'], c['managed']) for c in listed['containers']] == [(foreign_id, False)]

    adopted = container(engine, name=env, state='stopped', adopt=True)
    assert adopted['changed'] and adopted['adopted'] and adopted['container']['id'] == foreign_id, pretty(adopted)
    assert not inspect(engine['docker_host'], env)['State']['Running']
    again = container(engine, name=env, state='started')
    assert again.get('failed') and 'adopt: true' in again['msg'], 'adoption lasts for one task only'
    removed = container(engine, name=env, state='absent', adopt=True)
    assert removed['changed'] and inspect(engine['docker_host'], env) is None


def test_adopt_with_recreate_turns_a_foreign_container_into_ours(host_engine, host_env, busybox):
    make_foreign(host_engine['docker_host'], host_env, busybox)
    result = container(host_engine, name=host_env, image=busybox, labels={'team': 'ml'}, adopt=True, recreate=True)
    assert result['actions'] == ['recreate', 'start'] and result['container']['managed'], pretty(result)
    assert not container(host_engine, name=host_env, image=busybox, labels={'team': 'ml'})['changed']


def test_container_info_lists_every_environment_container_and_changes_nothing(engine, env, busybox):
    other = env + '-other'
    with removed_afterwards(engine['docker_host'], other):
        ours = container(engine, name=env, image=busybox)['container']
        foreign_id = make_foreign(engine['docker_host'], other, busybox, running=False)
        listing = run_module('container_info', dict(docker_host=engine['docker_host']))
        assert not listing['changed']
        mine = dict((c['env'], c) for c in listing['containers'] if c['env'] in (env, other))
        assert mine[env]['id'] == ours['id'] and mine[env]['managed'] and mine[env]['status'] == 'running'
        assert mine[env]['image'] == busybox and mine[env]['created'] == ours['created']
        assert mine[other]['id'] == foreign_id and not mine[other]['managed'] and mine[other]['status'] == 'created'
        only = run_module('container_info', dict(docker_host=engine['docker_host'], name=env))['containers']
        assert [c['id'] for c in only] == [ours['id']], 'the name filter is exact, not a prefix'
        assert inspect(engine['docker_host'], other)['State']['Status'] == 'created'


def test_create_pulls_a_registry_image_and_pull_always_reports_a_newer_one_as_drift(
        host_engine, host_env, busybox, testbed):
    image = RegistryImage(testbed['registry'], busybox)
    try:
        first_id = image.push(host_engine['docker_host'])
        would = container(host_engine, name=host_env, image=image.reference, _check=True)
        assert would['actions'] == ['pull', 'create', 'start'] and inspect(host_engine['docker_host'], host_env) is None

        created = container(host_engine, name=host_env, image=image.reference)
        assert created['actions'] == ['pull', 'create', 'start'], pretty(created)
        assert created['container']['image_id'] == first_id

        newer_id = image.push(host_engine['docker_host'], label=host_env)
        assert newer_id != first_id
        kept = container(host_engine, name=host_env, image=image.reference)
        assert not kept['changed'] and kept['drift'] == [], 'pull: missing does not pull for an existing container'
        pulled = container(host_engine, name=host_env, image=image.reference, pull='always')
        assert pulled['changed'] and pulled['actions'] == ['pull'], pretty(pulled)
        assert pulled['drift'] == [dict(option='image_id', wanted=newer_id, actual=first_id)]
        assert pulled['container']['image_id'] == first_id, 'never recreated silently'
        again = container(host_engine, name=host_env, image=image.reference, pull='always')
        assert not again['changed'] and again['drift'], pretty(again)
    finally:
        with contextlib.suppress(Exception):
            container(host_engine, name=host_env, state='absent')
        drop_local_image(host_engine['docker_host'], image.reference)
        image.delete()


@pytest.mark.parametrize('check', [False, True])
def test_an_image_in_no_registry_fails_with_one_line_and_creates_nothing(host_engine, host_env, testbed, check):
    missing = '%s/krtest-none/%s:latest' % (testbed['registry'], host_env)
    result = container(host_engine, name=host_env, image=missing, _check=check)
    assert result.get('failed') and one_line(result['msg']), pretty(result)
    assert result['msg'].startswith('Cannot pull image %s: ' % missing)
    assert inspect(host_engine['docker_host'], host_env) is None


def test_pull_never_without_the_image_fails_naming_it(engine, env, testbed):
    missing = '%s/krtest-none/%s:latest' % (testbed['registry'], env)
    result = container(engine, name=env, image=missing, pull='never')
    assert result.get('failed') and one_line(result['msg']) and missing in result['msg'], pretty(result)
    assert 'pull is never' in result['msg'] and inspect(engine['docker_host'], env) is None


def test_a_missing_container_without_image_says_to_give_one(host_engine, host_env):
    result = container(host_engine, name=host_env)
    assert result.get('failed') and result['msg'] == 'kohakuriver-env-%s does not exist; give image to create it.' % host_env


def test_an_image_without_a_shell_fails_and_leaves_nothing(host_engine, host_env):
    image = 'krtest-noshell-%s:latest' % host_env
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w') as archive:
        info = tarfile.TarInfo('etc/hostname')
        info.size = 0
        archive.addfile(info, io.BytesIO(b''))
    with contextlib.closing(client(host_engine['docker_host'])) as api:
        api.api.import_image_from_data(data.getvalue(), repository=image.split(':')[0], tag='latest')
    try:
        result = container(host_engine, name=host_env, image=image, pull='never')
        assert result.get('failed') and 'POSIX shell' in result['msg'] and one_line(result['msg']), pretty(result)
        assert inspect(host_engine['docker_host'], host_env) is None
    finally:
        with contextlib.closing(client(host_engine['docker_host'])) as api:
            for entry in api.api.containers(all=True, filters={'ancestor': image}):
                api.api.remove_container(entry['Id'], force=True)
        drop_local_image(host_engine['docker_host'], image)


@pytest.mark.parametrize('module', ['container', 'container_info', 'container_exec'])
@pytest.mark.parametrize('name', ['My-Env', '../etc', 'env x', 'x' * 65])
def test_a_bad_name_fails_before_docker_is_called(module, name):
    args = dict(name=name, docker_host=UNREACHABLE)
    if module == 'container_exec':
        args['argv'] = ['true']
    result = run_module(module, args)
    assert result.get('failed') and 'is not a valid environment name' in result['msg'], pretty(result)
    assert 'lowercase letters and digits' in result['msg'] and one_line(result['msg'])


@pytest.mark.parametrize('module', ['container', 'container_info'])
def test_an_unreachable_daemon_fails_with_one_line_naming_it(module, unique_env):
    result = run_module(module, dict(name=unique_env, docker_host=UNREACHABLE, timeout=5))
    assert result.get('failed') and one_line(result['msg']), pretty(result)
    assert result['msg'].startswith('Cannot reach the Docker daemon at %s: ' % UNREACHABLE)


def test_the_host_is_reached_over_ssh_through_paramiko(host_engine, host_env, busybox, testbed):
    over_ssh = dict(docker_host=testbed['ssh']['docker_host'])
    created = run_module('container', dict(over_ssh, name=host_env, image=busybox), env=ssh_environment(testbed))
    assert created['changed'] and created['container']['status'] == 'running', pretty(created)
    assert inspect(host_engine['docker_host'], host_env)['Id'] == created['container']['id']
    listed = run_module('container_info', dict(over_ssh, name=host_env), env=ssh_environment(testbed))
    assert [c['id'] for c in listed['containers']] == [created['container']['id']]
    removed = run_module('container', dict(over_ssh, name=host_env, state='absent'), env=ssh_environment(testbed))
    assert removed['changed'] and inspect(host_engine['docker_host'], host_env) is None
