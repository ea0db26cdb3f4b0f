"""The tarball module's registry option against the test bed's registries: one signed environment packaged and pushed
from the Host (classic image store) for the whole file, proved with skopeo, the docker CLI on a runner and ssh-keygen;
the failures leave its sidecar byte for byte; one push from runner3 (the containerd image store)."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import uuid

import pytest
import requests

from support.ansible_runs import run_module, run_playbook, write_inventory
from roles_support import BUSYBOX, environments_made, role_inventory, tarballs  # noqa: F401 pylint: disable=unused-import
from tarball_support import Environments, docker_cli, engine, remove_env_from

pytestmark = pytest.mark.integration

NAMESPACE = 'kohakuriver.docker-sidecar@v1'
PRINCIPAL = 'kohakuriver-host'
ACCEPT = 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json, ' \
         'application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json'


def skopeo_inspect(reference, raw=False):
    words = ['skopeo', 'inspect', '--tls-verify=false'] + (['--raw'] if raw else []) + ['docker://' + reference]
    completed = subprocess.run(words, capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def manifest_status(url, path, digest):
    return requests.head('http://%s/v2/%s/manifests/%s' % (url, path, digest), headers={'Accept': ACCEPT}, timeout=30).status_code


def delete_repository(url, path):
    """Delete every manifest the tags of url/path name (what this file pushed)."""
    base = 'http://%s/v2/%s' % (url, path)
    tags = (requests.get(base + '/tags/list', timeout=30).json().get('tags') or [])
    for tag in tags:
        digest = requests.head('%s/manifests/%s' % (base, tag), headers={'Accept': ACCEPT}, timeout=30).headers.get('Docker-Content-Digest')
        if digest:
            requests.delete('%s/manifests/%s' % (base, digest), timeout=30)


def sidecar_bytes(tarball):
    with open(tarball + '.json', 'rb') as handle:
        return handle.read()


def one_line_failure(result):
    assert result.get('failed'), result
    assert '\n' not in result['msg']
    return result['msg']


@pytest.fixture(scope='module')
def registries(testbed):
    found = testbed.get('registries')
    if not found:
        pytest.fail('the test bed has no registries: run python3 tests/testbed/testbed.py up', pytrace=False)
    return found


@pytest.fixture(scope='module')
def published(testbed, registries, tmp_path_factory):
    """One signed environment, packaged and pushed to the plain registry under a namespace of its own."""
    env, namespace = 'krtest-%s' % uuid.uuid4().hex[:10], 'krtest-%s' % uuid.uuid4().hex[:10]
    root = tmp_path_factory.mktemp('publish')
    folder = root / 'kohakuriver-containers'
    folder.mkdir()
    key = str(root / 'signing_key')
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'host', '-f', key], check=True)
    allowed = root / 'allowed_signers'
    allowed.write_text('%s namespaces="%s" %s' % (PRINCIPAL, NAMESPACE, open(key + '.pub').read()))
    host = testbed['host']['docker_host']
    registry = dict(url=registries['plain'], namespace=namespace)
    environments = Environments()
    environments.make(host, env)
    environments.exec(host, env, 'echo %s > /kr-marker' % env)
    args = dict(name=env, tarball_dir=str(folder), docker_host=host, signing_key=key, registry=registry)
    try:
        result = run_module('tarball', args)
        assert result.get('changed') and not result.get('failed'), result
        yield dict(env=env, host=host, args=args, result=result, tarball=result['tarball']['path'], allowed=str(allowed),
                   registry=registry, path='%s/%s' % (namespace, env), folder=folder, key=key)
    finally:
        environments.cleanup()
        delete_repository(registries['plain'], '%s/%s' % (namespace, env))


def test_the_pushed_manifest_is_the_one_the_signed_sidecar_records(published):
    result, registry = published['result'], published['registry']
    sidecar = json.loads(sidecar_bytes(published['tarball']))
    repository = '%s/%s/%s' % (registry['url'], registry['namespace'], published['env'])
    timestamp = str(result['tarball']['timestamp'])
    assert result['registry'] == sidecar['registry'] == dict(repository=repository, tag=timestamp,
                                                             digest=result['registry']['digest'])
    for tag in (timestamp, 'latest'):
        assert skopeo_inspect('%s:%s' % (repository, tag))['Digest'] == sidecar['registry']['digest']
    assert skopeo_inspect('%s:%s' % (repository, timestamp), raw=True)['config']['digest'] == sidecar['image_id']
    verify = subprocess.run(['ssh-keygen', '-Y', 'verify', '-f', published['allowed'], '-I', PRINCIPAL, '-n', NAMESPACE,
                             '-s', published['tarball'] + '.json.sig'], input=sidecar_bytes(published['tarball']),
                            capture_output=True, check=False)
    assert verify.returncode == 0, verify.stderr
    listed = docker_cli(published['host'], 'images', '--digests', '--format', '{{.Repository}}:{{.Tag}}@{{.Digest}}', repository)
    assert listed.strip() == ''  # the Host keeps no reference of the registry's name


def test_a_runner_pulls_the_digest_and_runs_it(published, docker_hosts):
    runner = engine(docker_hosts, 'runner1')['docker_host']
    reference = '%s@%s' % (published['result']['registry']['repository'], published['result']['registry']['digest'])
    try:
        docker_cli(runner, 'pull', '-q', reference)
        output = docker_cli(runner, 'run', '--rm', '--network', 'none', reference, '/bin/sh', '-c', 'cat /kr-marker')
        assert output.strip() == published['env']
    finally:
        subprocess.run(['docker', '-H', runner, 'rmi', '-f', reference], capture_output=True, check=False)


def test_a_second_run_pushes_nothing_and_a_lost_manifest_is_pushed_again(published):
    again = run_module('tarball', published['args'])
    assert not again.get('failed') and not again['changed'], again
    assert again['registry'] == published['result']['registry']
    url, path, digest = published['registry']['url'], published['path'], again['registry']['digest']
    assert requests.delete('http://%s/v2/%s/manifests/%s' % (url, path, digest), timeout=30).status_code == 202
    predicted = run_module('tarball', published['args'], check=True)
    assert predicted['changed'] and predicted['registry']['digest'] is None, predicted
    assert any('no longer has %s@%s' % (published['result']['registry']['repository'], digest) in reason for reason in predicted['reasons'])
    assert manifest_status(url, path, digest) == 404  # check mode pushed nothing
    pushed = run_module('tarball', published['args'])
    assert pushed['changed'] and not pushed.get('failed'), pushed
    assert pushed['registry']['digest'] == digest and manifest_status(url, path, digest) == 200
    assert json.loads(sidecar_bytes(published['tarball']))['registry'] == pushed['registry']


def closed_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_an_unreachable_registry_is_one_line_and_changes_no_sidecar(published):
    before = sidecar_bytes(published['tarball'])
    registry = dict(published['registry'], url='127.0.0.1:%d' % closed_port())
    msg = one_line_failure(run_module('tarball', dict(published['args'], registry=registry)))
    assert msg.startswith('Cannot reach registry %s' % registry['url']), msg
    assert sidecar_bytes(published['tarball']) == before


def test_the_daemons_push_error_is_one_line_and_leaves_no_sidecar_change_nor_tag(published, registries):
    before = sidecar_bytes(published['tarball'])
    registry = dict(published['registry'], url=registries['cache'])  # a pull-through cache: reads yes, pushes never
    msg = one_line_failure(run_module('tarball', dict(published['args'], registry=registry)))
    assert msg.startswith('Pushing %s/%s:' % (registry['url'], published['path'])) and 'failed: ' in msg, msg
    assert sidecar_bytes(published['tarball']) == before
    assert docker_cli(published['host'], 'images', '-q', '%s/%s' % (registry['url'], published['path'])).strip() == ''


def test_wrong_credentials_are_one_line_and_never_shown(published, registries):
    secure = registries['secure']
    before = sidecar_bytes(published['tarball'])
    registry = dict(published['registry'], url=secure['url'], username=secure['username'], password='wrong-%s' % uuid.uuid4().hex,
                    ca_path=secure['ca'])
    result = run_module('tarball', dict(published['args'], registry=registry))
    msg = one_line_failure(result)
    assert 'refused the credentials of registry.username %s' % secure['username'] in msg, msg
    assert registry['password'] not in json.dumps(result)
    assert sidecar_bytes(published['tarball']) == before
    without_ca = dict(registry, ca_path=None, password=secure['password'])
    assert 'give registry.ca_path' in one_line_failure(run_module('tarball', dict(published['args'], registry=without_ca)))


def test_the_secure_registry_takes_the_push_with_its_credentials(published, registries):
    secure = registries['secure']
    registry = dict(published['registry'], url=secure['url'], username=secure['username'], password=secure['password'],
                    ca_path=secure['ca'])
    try:
        result = run_module('tarball', dict(published['args'], registry=registry))
        assert result['changed'] and not result.get('failed'), result
        assert result['registry']['repository'].startswith(secure['url'] + '/')
        answer = requests.head('https://%s/v2/%s/manifests/%s' % (secure['url'], published['path'], result['registry']['digest']),
                               headers={'Accept': ACCEPT}, auth=(secure['username'], secure['password']), verify=secure['ca'], timeout=30)
        assert answer.status_code == 200
        assert secure['password'] not in json.dumps(result)
    finally:
        with contextlib.suppress(requests.RequestException):
            session = requests.Session()
            session.auth, session.verify = (secure['username'], secure['password']), secure['ca']
            base = 'https://%s/v2/%s' % (secure['url'], published['path'])
            for tag in session.get(base + '/tags/list', timeout=30).json().get('tags') or []:
                digest = session.head('%s/manifests/%s' % (base, tag), headers={'Accept': ACCEPT}, timeout=30).headers.get('Docker-Content-Digest')
                session.delete('%s/manifests/%s' % (base, digest), timeout=30)


def test_tar_create_passes_kohakuriver_registry(published, testbed, registries, tmp_path):
    namespace = 'krtest-%s' % uuid.uuid4().hex[:10]
    registry = dict(url=registries['plain'], namespace=namespace)
    inventory = write_inventory(tmp_path / 'inventory.json', testbed, tmp_path, extra_vars=dict(
        kohakuriver_tarball_dir=str(published['folder']), kohakuriver_signing_key=published['key'], kohakuriver_registry=registry))
    try:
        run = run_playbook('kohakuriver.docker.tar_create', inventory, extra_vars={'kr_env': published['env']})
        assert run.rc == 0 and run.changed('host') == 1, run
        recorded = json.loads(sidecar_bytes(published['tarball']))['registry']
        assert recorded['repository'] == '%s/%s/%s' % (registries['plain'], namespace, published['env'])
        assert 'Pushed %s as %s@%s.' % (published['tarball'], recorded['repository'], recorded['digest']) in run.stdout
        assert manifest_status(registries['plain'], '%s/%s' % (namespace, published['env']), recorded['digest']) == 200
    finally:
        delete_repository(registries['plain'], '%s/%s' % (namespace, published['env']))


def test_the_environment_role_pushes_and_pushes_again_to_a_new_repository_without_a_new_tarball(
        testbed, registries, shared_dir, tmp_path, unique_env, environments_made):
    environments_made.append(unique_env)
    first_ns, second_ns = 'krtest-%s' % uuid.uuid4().hex[:10], 'krtest-%s' % uuid.uuid4().hex[:10]
    inventory = role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state')
    definitions = [{'name': unique_env, 'image': BUSYBOX}]
    try:
        for namespace in (first_ns, second_ns):
            run = run_playbook('kohakuriver.docker.environment', inventory, extra_vars=dict(
                kohakuriver_environments=definitions, kohakuriver_registry=dict(url=registries['plain'], namespace=namespace)))
            assert run.rc == 0 and run.changed('host') > 0, run
            made = tarballs(shared_dir, unique_env)
            assert len(made) == 1
            recorded = json.loads(sidecar_bytes(str(shared_dir / 'kohakuriver-containers' / made[0])))['registry']
            assert recorded['repository'] == '%s/%s/%s' % (registries['plain'], namespace, unique_env)
            assert manifest_status(registries['plain'], '%s/%s' % (namespace, unique_env), recorded['digest']) == 200
    finally:
        for namespace in (first_ns, second_ns):
            delete_repository(registries['plain'], '%s/%s' % (namespace, unique_env))


def test_the_containerd_image_store_pushes_and_records_a_digest_whose_config_is_the_image(docker_hosts, registries, tmp_path):
    runner3 = engine(docker_hosts, 'runner3')
    assert runner3['image_store'] == 'containerd'
    env, namespace = 'krtest-%s' % uuid.uuid4().hex[:10], 'krtest-%s' % uuid.uuid4().hex[:10]
    environments = Environments()
    environments.make(runner3['docker_host'], env)
    args = dict(name=env, tarball_dir=str(tmp_path), docker_host=runner3['docker_host'],
                registry=dict(url=registries['plain'], namespace=namespace))
    try:
        result = run_module('tarball', args)
        assert result['changed'] and not result.get('failed'), result
        sidecar = json.loads(sidecar_bytes(result['tarball']['path']))
        pushed = skopeo_inspect('%s:%s' % (result['registry']['repository'], result['registry']['tag']), raw=True)
        if 'manifests' in pushed:  # an index: the platform manifest names the config
            pushed = skopeo_inspect('%s@%s' % (result['registry']['repository'], pushed['manifests'][0]['digest']), raw=True)
        assert pushed['config']['digest'] == sidecar['image_id']
        assert sidecar['registry'] == result['registry']
        assert not run_module('tarball', args)['changed']
    finally:
        environments.cleanup()
        remove_env_from(runner3['docker_host'], env)
        delete_repository(registries['plain'], '%s/%s' % (namespace, env))
