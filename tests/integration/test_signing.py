"""Signed sidecars end to end: the tarball module signs on the Host, image_sync and task check the signature on both
runner engines before they use the sidecar, and every forgery is one line naming the file and the key while the runner
keeps what it had. One signed package for the whole file; each bad case works on a copy of its folder."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import uuid

import docker
import pytest

from support.ansible_runs import run_module, warnings_of
from runner_helpers import RUNNERS, image_id_on, remove_env_from, runner_node
from tarball_factory import TarballFactory, read_sidecar
from tarball_support import Environments, remove_env_from as remove_env_from_host

pytestmark = pytest.mark.integration

NAMESPACE = 'kohakuriver.docker-sidecar@v1'
PRINCIPAL = 'kohakuriver-host'


def keygen(*args, data=None):
    return subprocess.run(['ssh-keygen'] + list(args), input=data, stdout=subprocess.PIPE, check=True).stdout


def make_key(folder, name):
    path = str(folder / name)
    keygen('-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', path)
    return dict(path=path, fingerprint='ED25519 ' + keygen('-l', '-f', path + '.pub').decode().split()[1],
                public=open(path + '.pub').read())


@pytest.fixture(scope='module')
def signed(testbed, tmp_path_factory):
    """One environment packaged on the Host by the tarball module with a signing key, in a private shared folder."""
    env = 'krtest-%s' % uuid.uuid4().hex[:10]
    root = tmp_path_factory.mktemp('signing')
    folder = root / 'cluster-share' / 'kohakuriver-containers'
    folder.mkdir(parents=True)
    keys = root / 'keys'
    keys.mkdir()
    host_key, stranger = make_key(keys, 'host'), make_key(keys, 'stranger')
    allowed = keys / 'allowed_signers'
    allowed.write_text('%s namespaces="%s" %s' % (PRINCIPAL, NAMESPACE, host_key['public']))
    host = testbed['host']['docker_host']
    environments = Environments()
    environments.make(host, env)
    try:
        packaged = run_module('tarball', dict(name=env, tarball_dir=str(folder), docker_host=host,
                                              signing_key=host_key['path']))
        assert packaged.get('changed') and not packaged.get('failed'), packaged
        yield dict(env=env, folder=folder, root=root, packaged=packaged, tarball=packaged['tarball']['path'],
                   host_key=host_key, stranger=stranger, allowed=str(allowed), host=host)
    finally:
        environments.cleanup()
        remove_env_from_host(host, env)
        for name in RUNNERS:
            with contextlib.closing(docker.DockerClient(base_url=runner_node(testbed, name)['docker_host'],
                                                        version='auto')) as client:
                remove_env_from(client, env)


@pytest.fixture(scope='module', params=RUNNERS)
def runner(request, testbed, signed):
    """A runner (both engine generations) that has synced the signed package once: what every bad case must keep."""
    node = runner_node(testbed, request.param)
    args = dict(name=signed['env'], tarball_dir=str(signed['folder']), docker_host=node['docker_host'],
                state_dir=str(signed['root'] / ('state-' + node['name'])), allowed_signers=signed['allowed'],
                require_signature=True)
    loaded = run_module('image_sync', args)
    assert loaded.get('changed') and loaded['verified'] and not loaded.get('failed'), loaded
    return dict(node=node, args=args, loaded=loaded)


def base_id(runner, env):
    with contextlib.closing(docker.DockerClient(base_url=runner['node']['docker_host'], version='auto')) as client:
        return client.api.inspect_image('kohakuriver/%s:base' % env)['Id']


def test_the_host_signs_and_a_client_we_did_not_write_accepts_the_signature(signed):
    tarball = signed['tarball']
    assert signed['packaged']['tarball']['signed_by'] == dict(principal=None, key=signed['host_key']['fingerprint'])
    assert sorted(name for name in os.listdir(signed['folder']) if not name.startswith('.')) == \
        sorted(os.path.basename(tarball) + suffix for suffix in ('', '.json', '.json.sig'))
    with open(tarball + '.json', 'rb') as sidecar:
        said = subprocess.run(['ssh-keygen', '-Y', 'verify', '-f', signed['allowed'], '-I', PRINCIPAL, '-n', NAMESPACE,
                               '-s', tarball + '.json.sig'], stdin=sidecar, stdout=subprocess.PIPE, check=True)
    assert signed['host_key']['fingerprint'].split()[1] in said.stdout.decode()
    again = run_module('tarball', dict(name=signed['env'], tarball_dir=str(signed['folder']), docker_host=signed['host'],
                                       signing_key=signed['host_key']['path']))
    assert not again['changed'] and again['tarball']['signed_by']['key'] == signed['host_key']['fingerprint'], again


def test_each_runner_loads_the_signed_package_and_says_who_signed_it(runner, signed):
    expected = dict(principal=PRINCIPAL, key=signed['host_key']['fingerprint'], signature=signed['tarball'] + '.json.sig')
    assert runner['loaded']['signed_by'] == expected
    assert runner['loaded']['image_id'] == image_id_on(runner['node'], read_sidecar(signed['tarball']))
    current = run_module('image_sync', runner['args'])
    assert current['action'] == 'none' and current['verified'] and current['signed_by'] == expected, current
    docker_run = subprocess.run(['docker', '-H', runner['node']['docker_host'], 'run', '--rm',
                                 'kohakuriver/%s:base' % signed['env'], 'true'], capture_output=True, check=False)
    assert docker_run.returncode == 0, docker_run.stderr


def forged_copy(signed, tmp_path):
    """A copy of the signed folder (the tarball hard-linked or copied) to forge in; the original stays intact."""
    folder = tmp_path / 'cluster-share' / 'kohakuriver-containers'
    folder.mkdir(parents=True)
    for name in os.listdir(signed['folder']):
        if name.startswith('.'):
            continue
        source, target = signed['folder'] / name, folder / name
        if name.endswith('.tar'):
            try:
                os.link(source, target)
                continue
            except OSError:
                pass
        shutil.copyfile(source, target)
    return folder / os.path.basename(signed['tarball'])


def sign(key, data):
    return keygen('-Y', 'sign', '-q', '-f', key['path'], '-n', NAMESPACE, data=data)


def edit_sidecar(path, **changes):
    data = json.loads(open(str(path) + '.json').read())
    data.update(changes)
    open(str(path) + '.json', 'w').write(json.dumps(data, indent=1, sort_keys=True) + '\n')


def forge_unknown_key(signed, tarball):
    open(str(tarball) + '.json.sig', 'wb').write(sign(signed['stranger'], open(str(tarball) + '.json', 'rb').read()))
    return dict(said='which %s does not list' % signed['allowed'], key=signed['stranger']['fingerprint'])


def forge_other_sidecar(signed, tarball):
    open(str(tarball) + '.json.sig', 'wb').write(sign(signed['host_key'], b'{"format": "another sidecar"}\n'))
    return dict(said='does not match the sidecar %s.json' % tarball, key=signed['host_key']['fingerprint'])


def forge_missing(signed, tarball):
    os.unlink(str(tarball) + '.json.sig')
    return dict(said='has no signature %s.json.sig, and require_signature is on' % tarball, key=None)


def forge_corrupt(signed, tarball):
    armored = open(str(tarball) + '.json.sig').read().splitlines()
    open(str(tarball) + '.json.sig', 'w').write('\n'.join(armored[:2] + ['!!!'] + armored[3:]) + '\n')
    return dict(said='The signature %s.json.sig is corrupt' % tarball, key=None)


def forge_edited(signed, tarball):
    edit_sidecar(tarball, created='2020-01-01T00:00:00Z')  # still true to the tarball: only the signature tells
    return dict(said='does not match the sidecar %s.json' % tarball, key=signed['host_key']['fingerprint'])


def forge_revoked(signed, tarball):
    return dict(said='which %s revokes' % (tarball.parent.parent / 'revoked.pub'), key=signed['host_key']['fingerprint'],
                revoke=True)


def forge_unsigned_pair(signed, tarball):
    """A newer tarball and its consistent sidecar, written by someone without the Host's key."""
    factory = TarballFactory(signed['host'], tarball.parent)
    try:
        newer = factory.make(signed['env'])
    finally:
        factory.cleanup()
    return dict(said='The sidecar %s.json has no signature' % newer, key=None)


FORGERIES = [forge_unknown_key, forge_other_sidecar, forge_missing, forge_corrupt, forge_edited, forge_revoked,
             forge_unsigned_pair]


@pytest.mark.parametrize('forge', FORGERIES, ids=[forge.__name__[len('forge_'):] for forge in FORGERIES])
def test_a_forgery_is_refused_in_one_line_naming_the_file_and_the_key_and_the_runner_keeps_its_image(
        runner, signed, tmp_path, forge):
    tarball = forged_copy(signed, tmp_path)
    case = forge(signed, tarball)
    args = dict(runner['args'], tarball_dir=str(tarball.parent))
    if case.get('revoke'):
        revoked = tmp_path / 'cluster-share' / 'revoked.pub'
        revoked.write_text(signed['host_key']['public'])
        args['revoked_keys'] = str(revoked)
    before = base_id(runner, signed['env'])
    for check in (False, True):
        result = run_module('image_sync', args, check=check)
        assert result.get('failed') and 'exception' not in result and '\n' not in result['msg'], result
        assert case['said'] in result['msg'] and str(tarball.parent) in result['msg'], result['msg']
        assert case['key'] is None or case['key'] in result['msg'], result['msg']
    assert base_id(runner, signed['env']) == before
    if forge is forge_edited:  # task syncs first, with the same options
        ran = run_module('task', dict(env=signed['env'], argv=['true'], shared_dir=str(tarball.parent.parent),
                                      state_dir=args['state_dir'], docker_host=args['docker_host'],
                                      allowed_signers=signed['allowed'], require_signature=True))
        assert ran.get('failed') and case['said'] in ran['msg'], ran
    if forge is forge_unsigned_pair:  # the trade-off of require_signature: false, said in a warning
        lenient = run_module('image_sync', dict(args, require_signature=False), check=True)
        assert not lenient.get('failed') and lenient['signed_by'] is None and lenient['action'] == 'load', lenient
        assert any('has no signature' in warning for warning in warnings_of(lenient)), lenient


def test_require_signature_without_allowed_signers_is_refused_before_any_docker_call(signed):
    result = run_module('image_sync', dict(name=signed['env'], tarball_dir=str(signed['folder']), require_signature=True,
                                           docker_host='tcp://127.0.0.1:1'))
    assert result.get('failed') and result['msg'].startswith('require_signature needs allowed_signers'), result
