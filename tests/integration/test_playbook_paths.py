"""The container playbooks on every path their headers document, and every playbook's refusal of a parameter name
without kr_, run for real with ansible-playbook on the test bed's Host. The inventory carries group variables named
like the parameters were before (env: production, image, state: absent, ...): none of them may change a run."""

from __future__ import annotations

import subprocess

import pytest

from support.ansible_runs import run_playbook
from container_support import host_engine, host_env, inspect, make_foreign  # noqa: F401 pylint: disable=unused-import
from playbook_support import colliding_inventory, summary

pytestmark = pytest.mark.integration


@pytest.fixture
def inventory(testbed, shared_dir, tmp_path):
    return colliding_inventory(tmp_path / 'inventory.json', testbed, shared_dir)


def container(verb, inventory, check=False, **extra):
    run = run_playbook('kohakuriver.docker.container_%s' % verb, inventory, extra_vars=extra, check=check)
    assert run.rc == 0, run
    return run


def docker_cli(docker_host, *args):
    """The plain docker CLI, a client this collection did not write."""
    return subprocess.run(['docker', '-H', docker_host] + list(args), capture_output=True, text=True, check=False)


def running(docker_host, env):
    found = docker_cli(docker_host, 'inspect', '-f', '{{.State.Running}}', 'kohakuriver-env-%s' % env)
    return None if found.returncode else found.stdout.strip() == 'true'


def test_container_verbs_take_their_kr_parameters_and_say_what_they_would_do_in_check_mode(host, env, testbed, inventory):
    busybox, name, daemon = testbed['images']['busybox'], 'kohakuriver-env-%s' % env, host['docker_host']

    checked = container('create', inventory, check=True, kr_env=env, kr_image=busybox)
    assert checked.changed() == 1 and running(daemon, env) is None, checked
    assert summary(checked).startswith('Check mode, nothing was done: would create, start %s from %s.' % (name, busybox))
    created = container('create', inventory, kr_env=env, kr_image=busybox, kr_pull='missing')
    assert '%s was created from %s, and is running.' % (name, busybox) in summary(created) and running(daemon, env)

    for verb, state, would in (('stop', 'stopped', 'stop'), ('start', 'running', 'start')):
        checked = container(verb, inventory, check=True, kr_env=env)
        assert summary(checked) == 'Check mode, nothing was done: would %s %s.' % (would, name), checked
        assert running(daemon, env) is (verb == 'stop'), 'check mode changed nothing'
        done = container(verb, inventory, kr_env=env)
        assert summary(done).startswith('%s is now %s' % (name, state)) and running(daemon, env) is (verb == 'start')

    listed = container('list', inventory, kr_env=env)
    assert [line for line in listed.stdout.splitlines() if env in line and 'running' in line], listed
    shell = container('shell', inventory, kr_env=env)
    assert 'exec -it %s sh' % name in shell.stdout, shell

    checked = container('delete', inventory, check=True, kr_env=env)
    assert summary(checked) == ('Check mode, nothing was done: would stop, remove %s; its tarballs and images would be '
                                'kept.' % name) and running(daemon, env)
    deleted = container('delete', inventory, kr_env=env)
    assert summary(deleted) == 'Removed %s; its tarballs and images are kept.' % name and running(daemon, env) is None
    assert summary(container('delete', inventory, kr_env=env)) == 'There is no %s; nothing to do.' % name

    started = container('start', inventory, kr_env=env, kr_image=busybox)
    assert started.changed() == 1 and running(daemon, env), 'with kr_image a missing container is created and started'


def test_kr_adopt_lets_every_verb_take_over_a_container_made_by_hand(host, env, testbed, inventory):
    foreign = make_foreign(host['docker_host'], env, testbed['images']['busybox'], running=False)
    refused = run_playbook('kohakuriver.docker.container_start', inventory, extra_vars={'kr_env': env})
    assert refused.rc != 0 and 'adopt: true' in refused.stdout and running(host['docker_host'], env) is False, refused
    container('start', inventory, kr_env=env, kr_adopt=True)
    assert running(host['docker_host'], env)
    container('stop', inventory, kr_env=env, kr_adopt=True)
    assert running(host['docker_host'], env) is False
    created = container('create', inventory, kr_env=env, kr_image=testbed['images']['busybox'], kr_adopt=True)
    assert 'already existed' in summary(created) and inspect(host['docker_host'], env)['Id'] == foreign
    container('delete', inventory, kr_env=env, kr_adopt=True)
    assert running(host['docker_host'], env) is None


# One parameter without kr_ per playbook, and the kr_ parameters that would make the run do something.
UNPREFIXED = [
    ('container_create', {'kr_image': 'busybox'}, 'env'),
    ('container_start', {}, 'env'),
    ('container_stop', {}, 'env'),
    ('container_delete', {}, 'env'),
    ('container_list', {}, 'env'),
    ('container_shell', {}, 'env'),
    ('tar_create', {}, 'env'),
    ('tar_list', {}, 'env'),
    ('tar_delete', {}, 'tarball'),
    ('sync', {}, 'envs'),
    ('task_submit', {'kr_node': 'runner1', 'kr_command': 'true'}, 'env'),
    ('vps', {'kr_node': 'runner1', 'kr_env': 'x'}, 'vps'),
]


def test_every_playbook_stops_at_a_parameter_without_kr_before_it_does_anything(host, env, testbed, inventory, shared_dir):
    assert container('create', inventory, kr_env=env, kr_image=testbed['images']['busybox']).changed() == 1
    tarball = shared_dir / 'kohakuriver-containers' / ('%s-1700000000.tar' % env)
    tarball.write_bytes(b'tarball')
    for name, given, old in UNPREFIXED:
        value = tarball.name if old == 'tarball' else [env] if old == 'envs' else env
        run = run_playbook('kohakuriver.docker.' + name, inventory, extra_vars=dict(given, **{old: value}))
        assert run.rc != 0 and 'give -e kr_%s instead of -e %s.' % (old, old) in run.stdout, (name, run)
        assert run.changed() == 0, (name, run)
    assert tarball.exists() and running(host['docker_host'], env)

    both = run_playbook('kohakuriver.docker.container_stop', inventory, extra_vars={'env': 'production', 'kr_env': env})
    assert both.rc == 0 and running(host['docker_host'], env) is False, 'an old name next to its kr_ name is let be'
    timeout = run_playbook('kohakuriver.docker.task_submit', inventory,
                           extra_vars={'kr_node': 'runner1', 'kr_env': env, 'kr_command': 'true', 'task_timeout': 5})
    assert timeout.rc != 0 and 'give -e kr_timeout instead of -e task_timeout.' in timeout.stdout, timeout
