"""Our tarballs and images with clients we did not write: the docker CLI, KohakuRiver's task form, skopeo.

Environment containers are made by kohakuriver.docker.container (keep-alive Entrypoint, managed label), packaged
by kohakuriver.docker.tarball on the Host (Docker 20.10: legacy `docker save` layout) or on runner2 used as a Host
(Docker 26: OCI layout), then loaded with plain `docker load -i` on both runner engines. Every `docker run` has a
subprocess timeout and a name, so an image that swallows its command fails the test instead of hanging it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import uuid

import pytest

from support.ansible_runs import run_module
from tarball_support import (  # noqa: F401 pylint: disable=unused-import
    BUSYBOX, IDLE, check_tarball_against_sidecar, client, container_name, container_state, docker_cli, engine, ensure_image,
    environments, image_reference, inspect_image, remove_env_from,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import LABEL_ENV, LABEL_MANAGED, LABEL_TIMESTAMP

pytestmark = pytest.mark.integration

MAKER = {'docker-legacy': 'host', 'oci': 'runner2'}
RUNNERS = ('runner1', 'runner2', 'runner3')  # 20.10, 26 (graph driver), 26 (containerd image store)
RUN_TIMEOUT = 60
ENTRYPOINT = ['/bin/sh', '-c', 'echo ep-$0 "$@"; exec "$@"', 'x']
# A base image with its own ENTRYPOINT, CMD, WORKDIR, USER, ENV (and StopSignal SIGUSR1; CUDA images have an ENTRYPOINT).
CUSTOM_CHANGES = ['ENTRYPOINT %s' % json.dumps(ENTRYPOINT), 'CMD ["echo", "base-cmd"]', 'WORKDIR /tmp',
                  'USER 65534:65534', 'ENV FROM_BASE=base-value']


def ok(result):
    assert not result.get('failed'), result.get('msg')
    return result


def run_image(docker_host, image, *command, options=()):
    """`docker run --rm [options] image [command]`: (exit code, stdout); fails the test after RUN_TIMEOUT."""
    name = 'kr-client-%s' % uuid.uuid4().hex[:12]
    argv = ['docker', '-H', docker_host, 'run', '--rm', '--name', name] + list(options) + [image] + list(command)
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        subprocess.run(['docker', '-H', docker_host, 'rm', '-f', name], capture_output=True, check=False)
        pytest.fail('docker run %s %s did not return within %d s: the image swallowed the command'
                    % (image, ' '.join(command), RUN_TIMEOUT))
    assert completed.returncode == 0, (argv, completed.stderr)
    return completed.stdout


def make_base(docker_host, kind, tag):
    """busybox as `docker import` made it (Entrypoint null, Cmd [sh]), or an image of it with CUSTOM_CHANGES."""
    ensure_image(docker_host, BUSYBOX)
    if kind == 'busybox':
        return BUSYBOX
    with contextlib.closing(client(docker_host)) as api:
        made = api.api.create_container(BUSYBOX, ['true'])['Id']
        try:
            # A commit refuses STOPSIGNAL as a change; it takes it in the config.
            api.api.commit(made, repository=tag.rpartition(':')[0], tag=tag.rpartition(':')[2], changes=CUSTOM_CHANGES,
                           conf={'StopSignal': 'SIGUSR1'})
        finally:
            api.api.remove_container(made)
    return tag


def remove_image(docker_host, reference):
    subprocess.run(['docker', '-H', docker_host, 'rmi', reference], capture_output=True, check=False)


def no_entrypoint(value):
    return value or None


def skopeo(*args):
    completed = subprocess.run(['skopeo', '--insecure-policy'] + list(args), capture_output=True, text=True,
                               timeout=300, check=False)
    assert completed.returncode == 0, (args, completed.stderr)
    return completed.stdout


@pytest.fixture
def packaged(request, docker_hosts, environments, unique_env, shared_dir):
    """(layout, base kind, maker engine, tarball result, marker text, base image config) for one parametrization."""
    layout, kind = request.param
    maker = engine(docker_hosts, MAKER[layout])['docker_host']
    tag = 'kr-client-base/%s:custom' % unique_env
    base = make_base(maker, kind, tag)
    try:
        environments.loaded_on(maker, unique_env)
        ok(run_module('container', dict(name=unique_env, image=base, pull='never', docker_host=maker,
                                        env={'FROM_DEFINITION': 'set-on-purpose'}, labels={'team': 'ml'})))
        marker = 'made-on-%s-%s' % (layout, uuid.uuid4().hex[:8])
        docker_cli(maker, 'exec', '-u', '0', container_name(unique_env), 'sh', '-c',
                   'echo %s > /tmp/kr-marker && chmod 0644 /tmp/kr-marker' % marker)
        folder = shared_dir / 'kohakuriver-containers'
        result = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=maker)))
        again = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=maker)))
        assert not again['changed'] and again['tarball'] == result['tarball']
        assert container_state(maker, unique_env)['Running']
        yield dict(layout=layout, kind=kind, maker=maker, tarball=result['tarball'], marker=marker,
                   base=inspect_image(maker, base)['Config'])
    finally:
        if kind != 'busybox':
            remove_env_from(maker, unique_env)  # the container and its images hold the base image
            remove_image(maker, tag)


CASES = [pytest.param((layout, kind), id='%s-%s' % (layout, kind)) for layout in MAKER for kind in ('busybox', 'custom')]


@pytest.mark.parametrize('packaged', CASES, indirect=True)
def test_plain_docker_load_and_run_and_kohakuriver_task_form_on_both_runners(packaged, docker_hosts, environments,
                                                                             unique_env, shared_dir):
    path, marker, base, custom = packaged['tarball']['path'], packaged['marker'], packaged['base'], packaged['kind'] == 'custom'
    assert check_tarball_against_sidecar(path)['archive_format'] == packaged['layout']
    shared_data = shared_dir / 'shared_data'
    shared_data.mkdir(exist_ok=True)
    (shared_data / 'kr-input').write_text('from-the-share\n')
    os.chmod(str(shared_data / 'kr-input'), 0o644)
    reference = image_reference(unique_env)
    # The maker's own environment container runs from the image it committed (layout chain): load everywhere else.
    for runner in [name for name in RUNNERS if name != MAKER[packaged['layout']]]:
        loader = engine(docker_hosts, runner)['docker_host']
        environments.loaded_on(loader, unique_env)
        subprocess.run(['docker', '-H', loader, 'rmi', reference], capture_output=True, check=False)
        docker_cli(loader, 'load', '-i', path)
        # docker run IMAGE CMD runs CMD (through the base's own entrypoint, when it has one).
        output = run_image(loader, reference, 'cat', '/tmp/kr-marker').splitlines()
        assert output == (['ep-x cat /tmp/kr-marker'] if custom else []) + [marker], runner
        # docker run IMAGE does what the base image does: busybox's sh reads no input and ends; the custom CMD echoes.
        output = run_image(loader, reference).splitlines()
        assert output == (['ep-x echo base-cmd', 'base-cmd'] if custom else []), runner
        # KohakuRiver's runner: docker run --rm -v <shared>/shared_data:/shared -w /shared IMAGE /bin/sh -c "exec ...".
        script = 'exec cat kr-input /tmp/kr-marker'
        output = run_image(loader, reference, '/bin/sh', '-c', script,
                           options=('-v', '%s:/shared' % shared_data, '-w', '/shared')).splitlines()
        assert output == (['ep-x /bin/sh -c ' + script] if custom else []) + ['from-the-share', marker], runner
        config = inspect_image(loader, reference)['Config']
        assert no_entrypoint(config.get('Entrypoint')) == no_entrypoint(base.get('Entrypoint')), runner
        assert config.get('Cmd') == base.get('Cmd'), runner
        for key in ('WorkingDir', 'User'):
            assert config.get(key) == base.get(key), (runner, key)
        assert (config.get('StopSignal') or 'SIGTERM') == (base.get('StopSignal') or 'SIGTERM')
        assert set(base.get('Env') or []) | {'FROM_DEFINITION=set-on-purpose'} <= set(config.get('Env') or [])
        labels = config['Labels']
        assert labels[LABEL_MANAGED] == 'false' and labels[LABEL_ENV] == unique_env and labels['team'] == 'ml'
        assert labels[LABEL_TIMESTAMP] == str(packaged['tarball']['timestamp'])

        docker_cli(loader, 'rmi', reference)


@pytest.mark.parametrize('packaged', [pytest.param((layout, 'custom'), id=layout) for layout in MAKER], indirect=True)
def test_skopeo_inspects_and_copies_every_tarball_we_write(packaged, tmp_path):
    path = packaged['tarball']['path']
    inspected = json.loads(skopeo('inspect', 'docker-archive:' + path))
    assert inspected['Labels'][LABEL_MANAGED] == 'false'
    assert len(inspected['Layers']) == len(json.load(open(path + '.json'))['layers'])
    config = json.loads(skopeo('inspect', '--config', 'docker-archive:' + path))['config']
    assert config['Entrypoint'] == ENTRYPOINT and config['Cmd'] == ['echo', 'base-cmd']
    assert config['WorkingDir'] == '/tmp' and config['User'] == '65534:65534'
    skopeo('copy', 'docker-archive:' + path, 'oci:%s:env' % (tmp_path / 'oci'))
    index = json.load(open(str(tmp_path / 'oci' / 'index.json')))
    assert [manifest['annotations']['org.opencontainers.image.ref.name'] for manifest in index['manifests']] == ['env']


@pytest.mark.parametrize('packaged', [pytest.param(('docker-legacy', 'busybox'), id='docker-legacy')], indirect=True)
def test_a_container_made_from_the_image_by_hand_is_not_an_environment_container(packaged, environments, unique_env):
    host = packaged['maker']
    by_hand = unique_env + '-by-hand'
    docker_cli(host, 'run', '-d', '--name', container_name(by_hand), image_reference(unique_env), *IDLE)
    try:
        listed = ok(run_module('container_info', dict(name=by_hand, docker_host=host)))['containers']
        assert [(entry['name'], entry['managed']) for entry in listed] == [(container_name(by_hand), False)]
        refused = run_module('container', dict(name=by_hand, docker_host=host, state='stopped'))
        assert refused['failed'] and 'was not made by kohakuriver.docker' in refused['msg']
        assert container_state(host, by_hand)['Running']
    finally:
        docker_cli(host, 'rm', '-f', container_name(by_hand))  # before the image it uses is removed


def test_tarball_leaves_a_foreign_container_alone_unless_adopt(docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    ensure_image(host, BUSYBOX)
    environments.loaded_on(host, unique_env)
    docker_cli(host, 'run', '-d', '--name', container_name(unique_env), BUSYBOX, *IDLE)
    started = container_state(host, unique_env)['StartedAt']
    args = dict(name=unique_env, tarball_dir=str(folder), docker_host=host)
    for check in (True, False):
        refused = run_module('tarball', args, check=check)
        assert refused['failed'] and refused['msg'] == (
            '%s exists but was not made by kohakuriver.docker (it has no %s=true label), so it is left untouched. Set '
            'adopt: true to manage it as an environment container, or rename it.' % (container_name(unique_env), LABEL_MANAGED))
    assert container_state(host, unique_env)['StartedAt'] == started
    assert os.listdir(str(folder)) == [] and inspect_image(host, image_reference(unique_env)) is None

    adopted = ok(run_module('tarball', dict(args, adopt=True)))
    assert adopted['changed'] and os.path.exists(adopted['tarball']['path'])
    state = container_state(host, unique_env)
    assert state['Running'] and state['StartedAt'] != started


def test_the_first_packaging_after_the_upgrade_replaces_a_tarball_whose_image_kept_the_keep_alive(
        docker_hosts, environments, unique_env, shared_dir):
    host = engine(docker_hosts, 'host')['docker_host']
    folder = shared_dir / 'kohakuriver-containers'
    ensure_image(host, BUSYBOX)
    environments.loaded_on(host, unique_env)
    ok(run_module('container', dict(name=unique_env, image=BUSYBOX, pull='never', docker_host=host)))
    first = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host)))['tarball']
    # What the sidecar of a tarball made before this change recorded: the image had the container's own config.
    from ansible_collections.kohakuriver.docker.plugins.module_utils.image_config import runtime_config
    attrs = json.loads(docker_cli(host, 'inspect', container_name(unique_env)))[0]
    sidecar = json.load(open(first['path'] + '.json'))
    sidecar['runtime_config'] = runtime_config(attrs['Config'], unique_env)
    assert sidecar['runtime_config']['Entrypoint'][:2] == ['sh', '-c']
    with open(first['path'] + '.json', 'w') as handle:
        json.dump(sidecar, handle)

    upgraded = ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host)))
    assert upgraded['changed'] and upgraded['reasons'] == ['the container configuration differs from %s' % first['file']]
    assert not ok(run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host)))['changed']
