"""Chained tarballs: each version is the previous one's layers plus one layer of what changed, and the container
packaging continues keeps its files, config, mounts, volumes and running state."""

from __future__ import annotations

import contextlib
import tarfile

import pytest

from support.ansible_runs import run_module
from dockerd_support import throwaway_dockerd
from tarball_support import (  # noqa: F401 pylint: disable=unused-import
    BUSYBOX, check_tarball_against_sidecar, client, container_name, container_state, docker_cli, engine, environments,
    image_reference, inspect_image,
)

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import LABEL_BASE_IMAGE, LABEL_BASE_IMAGE_ID

pytestmark = pytest.mark.integration


def package(env, folder, docker_host, check=False, diff=False, **options):
    result = run_module('tarball', dict(name=env, tarball_dir=str(folder), docker_host=docker_host, **options),
                        check=check, diff=diff)
    assert not result.get('failed'), result.get('msg')
    return result


def inspect(docker_host, env):
    with contextlib.closing(client(docker_host)) as api:
        return api.api.inspect_container(container_name(env))


def layer_names(path, sidecar, index):
    """The file names in layer index of a tarball, read with Python's tarfile (not our reader)."""
    with tarfile.open(path) as archive:
        layer = archive.extractfile(sidecar['layer_members'][index])
        with tarfile.open(fileobj=layer) as inner:
            return sorted(name for name in inner.getnames())


@pytest.mark.parametrize('engine_name', ['host', 'runner2'])
def test_each_version_adds_one_layer_of_its_changes_and_loads_whole_on_an_empty_daemon(
        docker_hosts, environments, unique_env, shared_dir, engine_name):
    maker = engine(docker_hosts, engine_name)['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(maker, unique_env)
    base_layers = len(inspect_image(maker, BUSYBOX)['RootFS']['Layers'])
    environments.exec(maker, unique_env, 'echo one > /kr-one; echo gone > /kr-gone')
    first = package(unique_env, folder, maker, keep=3)
    environments.exec(maker, unique_env, 'echo two > /kr-two; rm /kr-gone')
    second = package(unique_env, folder, maker, keep=3)
    environments.exec(maker, unique_env, 'echo three > /kr-three')
    third = package(unique_env, folder, maker, keep=3)

    sidecars = [check_tarball_against_sidecar(r['tarball']['path']) for r in (first, second, third)]
    assert [len(s['layers']) for s in sidecars] == [base_layers + 1, base_layers + 2, base_layers + 3]
    assert sidecars[1]['layers'][:-1] == sidecars[0]['layers'] and sidecars[2]['layers'][:-1] == sidecars[1]['layers']
    # The newest layer holds only what changed since the previous tarball (a deletion is a whiteout).
    assert [n for n in layer_names(third['tarball']['path'], sidecars[2], -1) if n.startswith('kr-')] == ['kr-three']
    assert [n for n in layer_names(second['tarball']['path'], sidecars[1], -1) if 'kr-' in n] == ['.wh.kr-gone', 'kr-two']
    assert third['runner_update']['layers_sent'] == 1 and third['runner_update']['layers'] == base_layers + 3

    attrs = inspect(maker, unique_env)
    assert attrs['Image'] == sidecars[2]['image_id'] and attrs['State']['Running']
    assert attrs['Config']['Labels'][LABEL_BASE_IMAGE] == BUSYBOX
    assert attrs['Config']['Labels'][LABEL_BASE_IMAGE_ID] == inspect_image(maker, BUSYBOX)['Id']
    assert sidecars[2]['source']['container_id'] == attrs['Id']
    assert not package(unique_env, folder, maker, keep=3)['changed']
    # The container's changes are those since the newest tarball, so check mode sees a rewritten file (flat does not).
    environments.exec(maker, unique_env, 'echo three-b > /kr-three')
    predicted = package(unique_env, folder, maker, check=True, diff=True, keep=3)
    assert predicted['changed'] and predicted['runner_update']['layers_sent'] == 1 and predicted['runner_update']['new_layer_bytes'] > 0
    assert predicted['diff']['after']['runner_update'] == predicted['runner_update']

    # KohakuRiver's runner view: plain docker load -i onto an empty daemon, then docker run --rm IMAGE sh -c.
    with throwaway_dockerd(unique_env) as daemon:
        docker_cli(daemon['docker_host'], 'load', '-i', third['tarball']['path'])
        output = docker_cli(daemon['docker_host'], 'run', '--rm', '--network', 'none', image_reference(unique_env),
                            '/bin/sh', '-c', 'cat /kr-one /kr-two /kr-three; test ! -e /kr-gone && echo no-gone')
    assert output.split() == ['one', 'two', 'three', 'no-gone']


def test_the_container_keeps_files_config_mounts_volumes_and_state(docker_hosts, environments, unique_env,
                                                                   shared_dir, tmp_path):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    bound = tmp_path / 'bound'
    bound.mkdir()
    volume = unique_env + '-named'
    made = run_module('container', dict(
        name=unique_env, image=BUSYBOX, docker_host=host, env=dict(KR_SETTING='kept'), labels={'kr.test': 'kept'},
        memory='64m', restart_policy='unless-stopped',
        mounts=[dict(source=str(bound), target='/bound'), dict(type='volume', source=volume, target='/named')]))
    environments.loaded_on(host, unique_env)
    assert not made.get('failed'), made.get('msg')
    try:
        docker_cli(host, 'exec', container_name(unique_env), 'sh', '-c',
                   'echo in-root > /kr-root; echo in-named > /named/file; echo in-bound > /bound/file')
        before = inspect(host, unique_env)
        package(unique_env, folder, host)
        after = inspect(host, unique_env)
        assert after['Id'] != before['Id'] and after['State']['Running'] and after['Name'] == before['Name']
        for key in ('Env', 'Entrypoint', 'Cmd', 'Hostname', 'User', 'WorkingDir'):
            assert after['Config'][key] == before['Config'][key], key
        assert after['Config']['Labels']['kr.test'] == 'kept'
        for key in ('Memory', 'RestartPolicy', 'Init', 'Mounts', 'Binds'):
            assert after['HostConfig'][key] == before['HostConfig'][key], key
        assert sorted((m['Destination'], m.get('Name')) for m in after['Mounts']) == \
            sorted((m['Destination'], m.get('Name')) for m in before['Mounts'])
        output = docker_cli(host, 'exec', container_name(unique_env), 'cat', '/kr-root', '/named/file', '/bound/file')
        assert output.split() == ['in-root', 'in-named', 'in-bound']
        # No container recreated by surprise: the declared image and options show no drift.
        again = run_module('container', dict(
            name=unique_env, image=BUSYBOX, docker_host=host, env=dict(KR_SETTING='kept'), labels={'kr.test': 'kept'},
            memory='64m', restart_policy='unless-stopped',
            mounts=[dict(source=str(bound), target='/bound'), dict(type='volume', source=volume, target='/named')]))
        assert not again.get('failed') and not again['changed'] and again['drift'] == [], again
        assert again['container']['image'] == BUSYBOX and again['container']['id'] == after['Id']
        aside = docker_cli(host, 'ps', '-a', '--filter', 'name=%s.chained-' % container_name(unique_env), '-q')
        assert aside.strip() == ''
    finally:
        docker_cli(host, 'rm', '-f', container_name(unique_env))
        docker_cli(host, 'volume', 'rm', volume)


def test_an_anonymous_volume_and_a_stopped_container_continue(docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.loaded_on(host, unique_env)
    docker_cli(host, 'run', '-d', '--name', container_name(unique_env), '-v', '/scratch', '--label',
               'io.kohakuriver.docker.managed=true', '--label', 'io.kohakuriver.docker.env=' + unique_env, BUSYBOX,
               'sh', '-c', 'echo kept > /scratch/file; sleep 3600')
    volume = [m['Name'] for m in inspect(host, unique_env)['Mounts'] if m['Destination'] == '/scratch'][0]
    docker_cli(host, 'stop', '-t', '1', container_name(unique_env))
    try:
        package(unique_env, folder, host)
        after = inspect(host, unique_env)
        assert not after['State']['Running']
        assert [m['Name'] for m in after['Mounts'] if m['Destination'] == '/scratch'] == [volume]
        docker_cli(host, 'start', container_name(unique_env))
        assert docker_cli(host, 'exec', container_name(unique_env), 'cat', '/scratch/file').strip() == 'kept'
    finally:
        docker_cli(host, 'rm', '-f', container_name(unique_env))
        docker_cli(host, 'volume', 'rm', volume)


def test_flat_layout_makes_one_layer_over_the_base_and_keeps_the_container(docker_hosts, environments, unique_env,
                                                                           shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    made = environments.make(host, unique_env)
    base_layers = len(inspect_image(host, BUSYBOX)['RootFS']['Layers'])
    environments.exec(host, unique_env, 'echo one > /kr-one')
    package(unique_env, folder, host, layout='flat')
    environments.exec(host, unique_env, 'echo two > /kr-two')
    second = package(unique_env, folder, host, layout='flat')
    sidecar = check_tarball_against_sidecar(second['tarball']['path'])
    assert len(sidecar['layers']) == base_layers + 1
    assert [n for n in layer_names(second['tarball']['path'], sidecar, -1) if n.startswith('kr-')] == ['kr-one', 'kr-two']
    assert inspect(host, unique_env)['Id'] == made and container_state(host, unique_env)['Running']


def test_past_max_layers_the_environment_layers_are_squashed_into_one_over_the_shared_base(
        docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    loader = engine(docker_hosts, 'runner2')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    environments.make(host, unique_env)
    base = inspect_image(host, BUSYBOX)['RootFS']['Layers']
    made = []
    for step, script in enumerate(['echo one > /kr-one; mkdir /kr-dir; echo a > /kr-dir/a; ln /kr-one /kr-link',
                                   'echo two > /kr-two; rm -r /kr-dir; echo one-b > /kr-one',
                                   'echo three > /kr-three; rm /bin/true', 'echo four > /kr-four']):
        environments.exec(host, unique_env, script)
        made.append(package(unique_env, folder, host, keep=4, max_layers=len(base) + 2))
        assert made[-1]['changed'], step
    layers = [check_tarball_against_sidecar(r['tarball']['path'])['layers'] for r in made]
    assert [len(found) for found in layers] == [len(base) + 1, len(base) + 2, len(base) + 1, len(base) + 2]
    assert all(found[:len(base)] == base for found in layers) and layers[3][:-1] == layers[2]
    assert [r['runner_update']['squash'] for r in made] == [False, False, True, False]
    assert inspect(host, unique_env)['Image'] == made[3]['tarball']['image_id']
    script = 'cat /kr-one /kr-link /kr-two /kr-three /kr-four; test ! -e /kr-dir && test ! -e /bin/true && echo gone'
    expected = ['one-b', 'one', 'two', 'three', 'four', 'gone']
    assert docker_cli(host, 'exec', container_name(unique_env), 'sh', '-c', script).split() == expected
    environments.loaded_on(loader, unique_env)
    docker_cli(loader, 'load', '-i', made[2]['tarball']['path'])
    output = docker_cli(loader, 'run', '--rm', '--network', 'none', image_reference(unique_env), '/bin/sh', '-c',
                        script.replace('/kr-four', ''))
    assert output.split() == expected[:4] + ['gone']
