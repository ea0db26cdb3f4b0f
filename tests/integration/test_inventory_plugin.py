"""The kohakuriver.docker.environments inventory plugin, read by ansible-inventory, against the test bed's Host."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid

import docker
import pytest
import yaml

from support.ansible_runs import run_module
from support.collection import BIN

pytestmark = pytest.mark.integration

BUSYBOX = '127.0.0.1:5000/kohakuriver-test/busybox:latest'
UNREACHABLE = 'unix:///var/tmp/kohakuriver-no-such-daemon.sock'


def unwrapped(value):
    """ansible-inventory's JSON with its {"__ansible_unsafe": x} wrappers taken off."""
    if isinstance(value, dict):
        if set(value) == {'__ansible_unsafe'}:
            return value['__ansible_unsafe']
        return dict((key, unwrapped(item)) for key, item in value.items())
    if isinstance(value, list):
        return [unwrapped(item) for item in value]
    return value


def inventory_of(folder, config, *args, env=None):
    """(rc, the inventory as a dict, stderr) of ansible-inventory --list over a plugin configuration file."""
    path = folder / 'kohakuriver_environments.yml'
    path.write_text(yaml.safe_dump(dict({'plugin': 'kohakuriver.docker.environments'}, **config)))
    completed = subprocess.run([str(BIN / 'ansible-inventory'), '-i', str(path), '--list'] + list(args),
                               capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
                               env=dict(os.environ, ANSIBLE_INVENTORY_UNPARSED_FAILED='1', **(env or {})))
    listed = unwrapped(json.loads(completed.stdout)) if completed.returncode == 0 else {}
    return completed.returncode, listed, completed.stderr


def group(listed, name):
    return set(listed.get(name, {}).get('hosts', []))


def hostvars(listed, host):
    return listed['_meta']['hostvars'][host]


class Environments(object):
    """Environment containers made on the Host for this file's tests, and a foreign container that carries the name."""

    def __init__(self, docker_host):
        tag = uuid.uuid4().hex[:8]
        self.docker_host = docker_host
        self.running, self.stopped, self.foreign, self.later = ('krinv%s-%s' % (tag, role) for role in ('run', 'stop', 'foreign', 'later'))
        self.mine = [self.running, self.stopped]

    def make(self, env, state):
        result = run_module('container', {'name': env, 'image': BUSYBOX, 'state': state, 'docker_host': self.docker_host})
        assert not result.get('failed'), result
        return result

    def client(self):
        return contextlib.closing(docker.DockerClient(base_url=self.docker_host, version='auto', timeout=120))

    def remove(self, envs):
        with self.client() as client:
            for env in envs:
                with contextlib.suppress(docker.errors.NotFound):
                    client.api.remove_container('kohakuriver-env-' + env, force=True)


@pytest.fixture(scope='module')
def environments(testbed, host_images):
    made = Environments(testbed['host']['docker_host'])
    try:
        made.make(made.running, 'started')
        made.make(made.stopped, 'stopped')
        with made.client() as client:  # by hand, as a user or KohakuRiver would: our name, not our label
            client.containers.create(host_images['busybox'], ['sleep', '600'], name='kohakuriver-env-' + made.foreign)
        yield made
    finally:
        made.remove([made.running, made.stopped, made.foreign, made.later])


def ours(listed, environments):
    return group(listed, 'kohakuriver_environments') & set(environments.mine + [environments.foreign, environments.later])


def test_lists_our_environments_running_and_stopped_with_their_variables(environments, tmp_path):
    rc, listed, stderr = inventory_of(tmp_path, {'hosts': [{'name': 'host', 'docker_host': environments.docker_host}]})
    assert rc == 0, stderr
    assert ours(listed, environments) == {environments.running, environments.stopped}
    assert environments.running in group(listed, 'kohakuriver_environments_running')
    assert environments.stopped in group(listed, 'kohakuriver_environments_stopped')
    assert environments.foreign not in json.dumps(listed)
    with environments.client() as client:  # what the docker CLI's daemon says, not what our modules said
        inspected = client.api.inspect_container('kohakuriver-env-' + environments.running)
        stopped_status = client.api.inspect_container('kohakuriver-env-' + environments.stopped)['State']['Status']
    running = hostvars(listed, environments.running)
    assert running == dict(running, **{
        'ansible_connection': 'kohakuriver.docker.env', 'ansible_host': environments.running,
        'kohakuriver_docker_host': environments.docker_host, 'kohakuriver_docker_api_version': 'auto',
        'kohakuriver_docker_tls': False, 'kohakuriver_docker_validate_certs': False,
        'kohakuriver_env': environments.running, 'kohakuriver_env_host': 'host',
        'kohakuriver_env_container': 'kohakuriver-env-' + environments.running, 'kohakuriver_env_container_id': inspected['Id'],
        'kohakuriver_env_image': BUSYBOX, 'kohakuriver_env_image_id': inspected['Image'],
        'kohakuriver_env_status': 'running', 'kohakuriver_env_running': True,
    })
    assert stopped_status in ('created', 'exited')
    assert hostvars(listed, environments.stopped)['kohakuriver_env_status'] == stopped_status
    assert hostvars(listed, environments.stopped)['kohakuriver_env_running'] is False


def test_keyed_groups_compose_groups_and_filters(environments, tmp_path):
    config = {
        'hosts': [{'docker_host': environments.docker_host}],
        'keyed_groups': [{'key': 'kohakuriver_env_status', 'prefix': 'status'}],
        'groups': {'mine': "kohakuriver_env is match('%s')" % environments.running[:13]},
        'compose': {'short_id': 'kohakuriver_env_container_id[:12]'},
        'filters': [{'exclude': "kohakuriver_env == '%s'" % environments.stopped}, {'include': 'kohakuriver_env_running'}],
    }
    rc, listed, stderr = inventory_of(tmp_path, config)
    assert rc == 0, stderr
    assert ours(listed, environments) == {environments.running}
    assert environments.running in group(listed, 'status_running')
    assert group(listed, 'mine') == {environments.running}
    running = hostvars(listed, environments.running)
    assert running['short_id'] == running['kohakuriver_env_container_id'][:12]
    assert running['kohakuriver_env_host'] == environments.docker_host  # no name: the daemon's address


def test_several_hosts_need_a_prefix_for_names_they_share(environments, tmp_path):
    both = [{'name': 'one', 'docker_host': environments.docker_host}, {'name': 'two', 'docker_host': environments.docker_host}]
    rc, _listed, stderr = inventory_of(tmp_path, {'hosts': both})
    assert rc != 0
    assert 'give one of them a prefix in hosts' in stderr, stderr
    both[1]['prefix'] = 'two-'
    rc, listed, stderr = inventory_of(tmp_path, {'hosts': both})
    assert rc == 0, stderr
    assert hostvars(listed, 'two-' + environments.running)['ansible_host'] == environments.running
    assert hostvars(listed, 'two-' + environments.running)['kohakuriver_env_host'] == 'two'
    assert hostvars(listed, environments.running)['kohakuriver_env_host'] == 'one'


def test_a_host_that_does_not_answer_fails_the_source_with_its_name(tmp_path):
    rc, _listed, stderr = inventory_of(tmp_path, {'hosts': [{'name': 'gone', 'docker_host': UNREACHABLE}]})
    assert rc != 0
    assert 'Host gone: Cannot reach the Docker daemon at %s' % UNREACHABLE in ' '.join(stderr.split()), stderr


def test_bad_configuration_is_one_line_that_says_what_to_fix(tmp_path):
    rc, _listed, stderr = inventory_of(tmp_path, {'hosts': [{'docker_host': 'http://x', 'colour': 'red'}]})
    assert rc != 0 and 'hosts[1] has unknown option(s) colour' in stderr, stderr
    rc, _listed, stderr = inventory_of(tmp_path, {'filters': [{'include': 'true', 'exclude': 'false'}]})
    assert rc != 0 and 'filters[1] must be a dict with exactly one of include and exclude' in stderr, stderr


def test_the_cache_answers_until_it_is_flushed(environments, tmp_path):
    cache = {'ANSIBLE_INVENTORY_CACHE': '1', 'ANSIBLE_INVENTORY_CACHE_PLUGIN': 'ansible.builtin.jsonfile',
             'ANSIBLE_INVENTORY_CACHE_CONNECTION': str(tmp_path / 'cache')}
    config = {'hosts': [{'name': 'host', 'docker_host': environments.docker_host}]}
    rc, listed, stderr = inventory_of(tmp_path, config, env=cache)
    assert rc == 0, stderr
    assert environments.later not in group(listed, 'kohakuriver_environments')
    assert os.listdir(tmp_path / 'cache')
    environments.make(environments.later, 'started')
    rc, cached, stderr = inventory_of(tmp_path, config, env=cache)
    assert rc == 0, stderr
    assert environments.later not in group(cached, 'kohakuriver_environments')
    assert hostvars(cached, environments.running) == hostvars(listed, environments.running)
    rc, flushed, stderr = inventory_of(tmp_path, config, '--flush-cache', env=cache)
    assert rc == 0, stderr
    assert environments.later in group(flushed, 'kohakuriver_environments_running')
