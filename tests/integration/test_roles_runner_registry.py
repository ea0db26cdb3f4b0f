"""The runner role's daemon registry settings (roles/runner/tasks/daemon_registry.yml) on a throwaway dockerd whose
daemon.json the test owns: merged (a foreign key stays), reloaded by SIGHUP (`docker info` shows them), idempotent,
honest in check mode; the registry CA installed in certs.d makes the daemon trust the test bed's secure registry at
a non-loopback address (where dockerd verifies TLS), which it refused before."""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

import pytest

from dockerd_support import throwaway_dockerd
from registry_support import (  # noqa: F401 pylint: disable=unused-import
    docker_cli, docker_login, forwarded, pushed_unique_image, read_marker, registries, secure_api,
)
from roles_support import changed_tasks
from support.ansible_runs import run_playbook, write_inventory

pytestmark = pytest.mark.integration

PLAYBOOK = '''---
- name: Configure the daemon's registry settings
  hosts: runner1
  gather_facts: false
  tasks:
    - name: The runner role's daemon registry settings
      ansible.builtin.include_role:
        name: kohakuriver.docker.runner
        tasks_from: daemon_registry
'''
FOREIGN = {'labels': ['krtest.foreign=kept'], 'log-level': 'info'}
MIRROR = 'http://127.0.0.1:5100/'
INSECURE = 'registry.krtest.invalid:5000'
CERTS_D = '/etc/docker/certs.d'


def _info(docker_host):
    return json.loads(docker_cli(docker_host, 'info', '--format', '{{json .}}').stdout)


def _wait_for_mirrors(docker_host, mirrors, timeout=15):
    deadline = time.monotonic() + timeout
    while True:
        info = _info(docker_host)
        if info['RegistryConfig']['Mirrors'] == mirrors or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


def test_the_role_merges_reloads_and_makes_the_daemon_trust_the_registry_ca(testbed, registries, shared_dir, tmp_path):
    secure = registries['secure']
    port = 10000 + int(secure['url'].rpartition(':')[2])  # a port of this test's own: its certs.d folder is too
    url = '%s:%d' % (secure['runner_url'].rpartition(':')[0], port)
    certs = os.path.join(CERTS_D, url)
    assert not os.path.exists(certs), '%s is left from an earlier run; remove it' % certs
    daemon_json = tmp_path / 'daemon.json'
    daemon_json.write_text(json.dumps(FOREIGN))
    playbook = tmp_path / 'daemon.yml'
    playbook.write_text(PLAYBOOK)
    host = testbed['host']['docker_host']
    name = 'krreg-%s' % uuid.uuid4().hex[:8]
    with throwaway_dockerd(name, extra_args=['--config-file', str(daemon_json)]) as daemon, \
            forwarded('kr-' + name[-12:], [(url, secure['url'])], addresses=[url.rpartition(':')[0]]), \
            docker_login(host, secure) as config, pushed_unique_image(host, secure['url'], secure_api(registries), config=config) as image:
        try:
            variables = {'kohakuriver_docker_daemon_json': str(daemon_json),
                         'kohakuriver_docker_pidfile': '/var/tmp/%s/docker.pid' % name, 'kohakuriver_registry': {'url': url},
                         'kohakuriver_registry_ca': secure['ca'], 'kohakuriver_registry_mirrors': [MIRROR],
                         'kohakuriver_max_concurrent_downloads': 7, 'kohakuriver_insecure_registries': [INSECURE]}
            inventory = write_inventory(tmp_path / 'inventory.json', testbed, shared_dir, variables)
            untrusted = docker_cli(daemon['docker_host'], 'login', '-u', secure['username'], '--password-stdin', url, check=False,
                                   stdin=secure['password'], config=str(tmp_path))
            assert untrusted.returncode != 0 and 'x509' in untrusted.stderr, untrusted.stderr

            checked = run_playbook(playbook, inventory, check=True)
            assert checked.rc == 0 and checked.recap['runner1']['changed'] >= 1, checked
            assert json.loads(daemon_json.read_text()) == FOREIGN and not os.path.exists(certs), 'check mode changed nothing'

            first = run_playbook(playbook, inventory)
            assert first.rc == 0, first
            assert 'RUNNING HANDLER [kohakuriver.docker.runner : Reload the Docker daemon (SIGHUP re-reads daemon.json)]' in first.stdout, first
            assert json.loads(daemon_json.read_text()) == dict(FOREIGN, **{
                'registry-mirrors': [MIRROR], 'max-concurrent-downloads': 7, 'insecure-registries': [INSECURE]})
            info = _wait_for_mirrors(daemon['docker_host'], [MIRROR])
            assert info['RegistryConfig']['Mirrors'] == [MIRROR], info['RegistryConfig']
            assert info['RegistryConfig']['IndexConfigs'][INSECURE]['Secure'] is False, info['RegistryConfig']
            assert 'krtest.foreign=kept' in info['Labels']

            reference = '%s/%s:%s' % (url, image['repository'], image['tag'])
            with docker_login(daemon['docker_host'], secure, url) as daemon_config:
                docker_cli(daemon['docker_host'], 'pull', reference, config=daemon_config)
            assert read_marker(daemon['docker_host'], reference) == image['marker']

            second = run_playbook(playbook, inventory)
            assert second.rc == 0 and second.recap['runner1']['changed'] == 0, changed_tasks(second)
        finally:
            shutil.rmtree(certs, ignore_errors=True)
