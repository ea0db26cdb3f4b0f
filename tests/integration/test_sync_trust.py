"""Nothing on the share is trusted without a check: a sidecar that disagrees with its tarball, a sidecar of the wrong
shape, a tarball linked from outside the folder and a relative tarball_dir are refused with one line, and the runner
keeps what it had; a daemon dying mid-load is reported as the failed load of that tarball."""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest

from support.ansible_runs import run_module, start_module
from dockerd_support import throwaway_dockerd
from runner_helpers import base_of, factory, image_id_on, runner, sync_args  # noqa: F401 pylint: disable=unused-import
from tarball_factory import TarballFactory, read_sidecar, write_sidecar
from tarball_support import environments  # noqa: F401 pylint: disable=unused-import

pytestmark = pytest.mark.integration

BUSYBOX_ON_RUNNERS = '127.0.0.1:5000/kohakuriver-test/busybox:latest'
ADVICE = 'remove the sidecar to treat the tarball as unverified, or package again.'


def one_line_failure(result):
    assert result.get('failed') and 'module_stderr' not in result and 'exception' not in result, result
    assert '\n' not in result['msg'] and 'Traceback' not in result['msg'], result['msg']
    return result['msg']


def refused_for_disagreeing(result, path):
    msg = one_line_failure(result)
    assert msg.startswith('The tarball %s does not hold what its sidecar %s.json says (' % (path, path)), msg
    return msg


@pytest.mark.parametrize('claimed', ['busybox', 'previous'])
def test_a_sidecar_naming_an_image_already_on_the_runner_is_refused_and_base_stays(
        runner, factory, sync_args, unique_env, claimed):
    """Before: image_sync re-tagged busybox (or the previous version) as :base, verified, and called it up to date."""
    old = factory.make(unique_env)
    assert run_module('image_sync', sync_args)['loaded']
    new = factory.make(unique_env)
    lie = runner['client'].api.inspect_image(BUSYBOX_ON_RUNNERS) if claimed == 'busybox' \
        else runner['client'].api.inspect_image(image_id_on(runner, read_sidecar(old)))
    write_sidecar(new, dict(read_sidecar(new), image_id=lie['Id'], layers=lie['RootFS']['Layers']))
    for check in (True, False):
        result = run_module('image_sync', sync_args, check=check)
        assert 'its config' in refused_for_disagreeing(result, new) and lie['Id'] in result['msg']
        assert 'kohakuriver/%s:base stays as it was' % unique_env in result['msg']
        assert base_of(runner, unique_env)['Id'] == image_id_on(runner, read_sidecar(old))
        assert 'kohakuriver/%s:%d' % (unique_env, read_sidecar(new)['timestamp']) not in base_of(runner, unique_env)['RepoTags']
    os.unlink(new + '.json')  # without the lying sidecar the tarball is KohakuRiver's kind: loaded, unverified
    honest = run_module('image_sync', sync_args)
    assert honest['loaded'] and not honest['verified'] and honest['image_id'] != lie['Id'], honest


def test_an_up_to_date_runner_is_not_told_so_when_the_tarball_is_no_longer_the_sidecars(
        runner, factory, sync_args, unique_env):
    """Before: the up-to-date path read only the sidecar, so a tarball replaced under it went unnoticed."""
    synced = factory.make(unique_env)
    assert run_module('image_sync', sync_args)['loaded']
    replacement = factory.make(unique_env + '-other')
    try:
        shutil.copyfile(replacement, synced)  # another image's tarball under the synced name, its sidecar unchanged
        result = run_module('image_sync', sync_args)
        msg = refused_for_disagreeing(result, synced)
        assert 'sidecar says' in msg or 'differs from its sidecar entry' in msg, msg
        assert base_of(runner, unique_env)['Id'] == image_id_on(runner, read_sidecar(synced))
    finally:
        for path in (replacement, replacement + '.json'):
            os.unlink(path)


def test_the_up_to_date_check_reads_no_layer(runner, factory, sync_args, unique_env):
    path = factory.make(unique_env)
    assert run_module('image_sync', sync_args)['loaded']
    sidecar = read_sidecar(path)
    with open(path, 'r+b') as handle:  # every layer's bytes zeroed in place: only a read of a layer would notice
        for name in sidecar['layer_members']:
            member = [entry for entry in sidecar['members'] if entry['name'] == name][0]
            handle.seek(member['offset'])
            handle.write(bytes(member['size']))
    current = run_module('image_sync', sync_args)
    assert not current.get('failed') and current['action'] == 'none' and current['verified'], current


BAD_FIELDS = [
    ('size', 'abc', 'size is "abc", not a whole number >= 0'),
    ('members', 'x', 'members is "x", not a list'),
    ('members', [1, 2], 'members[0] is 1, not an object'),
    ('image_id', 123, 'image_id is 123, not sha256:<64 lowercase hex digits>'),
    ('source', 'x', 'source is "x", not an object'),
]


@pytest.mark.parametrize('field, value, said', BAD_FIELDS, ids=[case[0] + '-' + json.dumps(case[1]) for case in BAD_FIELDS])
def test_a_sidecar_field_of_the_wrong_type_is_one_line_in_every_module_that_reads_it(
        testbed, environments, shared_dir, tmp_path, unique_env, field, value, said):
    """Before: tracebacks (a .get on a string, int('abc') comparisons) in image_sync, task, tarball_info and the tarball
    module's check mode."""
    host = testbed['host']['docker_host']
    runner1 = [node for node in testbed['runners'] if node['name'] == 'runner1'][0]
    folder = shared_dir / 'kohakuriver-containers'
    path = str(folder / ('%s-1700000000.tar' % unique_env))
    with open(path, 'wb') as handle:
        handle.write(b'\0' * 10240)
    sidecar = {'format': 'kohakuriver.docker/tarball-v1', 'size': 10240, 'sha256': 'a' * 64, 'image_id': 'sha256:' + 'b' * 64,
               'layers': [], 'members': [], 'source': {'container_id': None}}
    write_sidecar(path, dict(sidecar, **{field: value}))
    expected = '%s.json: %s; %s' % (path, said, ADVICE)

    synced = run_module('image_sync', dict(name=unique_env, tarball_dir=str(folder), docker_host=runner1['docker_host'],
                                           state_dir=str(tmp_path / 'state')))
    assert one_line_failure(synced) == expected
    ran = run_module('task', dict(env=unique_env, argv=['true'], shared_dir=str(shared_dir), state_dir=str(tmp_path / 'state'),
                                  docker_host=runner1['docker_host']))
    assert one_line_failure(ran) == expected
    listed = run_module('tarball_info', dict(tarball_dir=str(folder), name=unique_env))
    assert not listed.get('failed') and listed['tarballs'][0]['problem'] == expected, listed
    assert not listed['tarballs'][0]['verified']
    environments.make(host, unique_env)
    checked = run_module('tarball', dict(name=unique_env, tarball_dir=str(folder), docker_host=host), check=True)
    assert one_line_failure(checked) == expected


def test_a_tarball_linked_from_outside_the_folder_is_refused_like_state_absent_refuses_it(
        runner, factory, sync_args, unique_env, shared_dir, tmp_path):
    """Before: image_sync loaded the file a link in tarball_dir led to, anywhere on the runner."""
    outside = tmp_path / 'elsewhere'
    outside.mkdir()
    made = factory.make(unique_env)
    name = os.path.basename(made)
    for suffix in ('', '.json'):
        shutil.move(made + suffix, str(outside / (name + suffix)))
    os.symlink(str(outside / name), made)
    shutil.copyfile(str(outside / (name + '.json')), made + '.json')
    result = run_module('image_sync', sync_args)
    assert one_line_failure(result) == '%s is a link pointing out of tarball_dir (to %s); refusing to load it. Put the file ' \
        'itself in %s.' % (made, outside / name, sync_args['tarball_dir'])
    assert base_of(runner, unique_env) is None
    listed = run_module('tarball_info', dict(tarball_dir=sync_args['tarball_dir'], name=unique_env))
    assert not listed['tarballs'][0]['verified'] and 'link pointing out of tarball_dir' in listed['tarballs'][0]['problem']
    removed = run_module('tarball', dict(name=unique_env, tarball_dir=sync_args['tarball_dir'], state='absent', tarball=name,
                                         docker_host='unix:///nonexistent.sock'))
    assert 'is a link pointing out of tarball_dir (to %s); refusing to touch it.' % (outside / name) in one_line_failure(removed)
    os.unlink(made)
    os.symlink(name + '.real', made)  # a link within the folder is the folder's own file: loaded
    shutil.move(str(outside / name), made + '.real')
    assert run_module('image_sync', sync_args)['loaded']
    os.unlink(made + '.real')


def test_a_relative_tarball_dir_is_refused_by_every_module_that_takes_it(testbed, unique_env, tmp_path):
    """Before: each module resolved it against its own working directory (a temporary folder of Ansible's)."""
    runner1 = [node for node in testbed['runners'] if node['name'] == 'runner1'][0]['docker_host']
    host = testbed['host']['docker_host']
    relative = 'share/kohakuriver-containers'
    said = "tarball_dir '%s' is not an absolute path: give the folder from the root, like " \
        "/mnt/cluster-share/kohakuriver-containers." % relative
    state = str(tmp_path / 'state')
    runs = {
        'tarball': dict(name=unique_env, tarball_dir=relative, docker_host=host),
        'tarball absent': dict(name=unique_env, tarball_dir=relative, state='absent', docker_host=host),
        'tarball_info': dict(tarball_dir=relative),
        'image_sync': dict(name=unique_env, tarball_dir=relative, state_dir=state, docker_host=runner1),
        'task': dict(env=unique_env, argv=['true'], tarball_dir=relative, state_dir=state, docker_host=runner1),
        'vps': dict(name='s-%s' % unique_env[-8:], env=unique_env, tarball_dir=relative, state_dir=state, generate_key=True,
                    docker_host=runner1),
    }
    for module, args in runs.items():
        result = run_module(module.split()[0], args, check=module == 'vps')
        assert one_line_failure(result) == said, (module, result)


def bytes_read_by(pid):
    try:
        with open('/proc/%d/io' % pid) as handle:
            return int([line for line in handle if line.startswith('rchar:')][0].split()[1])
    except OSError:
        return 0


def test_a_daemon_dying_mid_load_is_the_failed_load_of_that_tarball(testbed, shared_dir, tmp_path, unique_env):
    """Before: 'Docker error: (Connection aborted. ...)' from the clean-up after the load, naming neither."""
    maker = TarballFactory(testbed['host']['docker_host'], shared_dir / 'kohakuriver-containers')
    try:
        maker.unique_base(unique_env)
        path = maker.make(unique_env, random_bytes=320 * 1024 * 1024)
    finally:
        maker.cleanup()
    with throwaway_dockerd(unique_env) as daemon:
        process = start_module('image_sync', dict(name=unique_env, tarball_dir=str(shared_dir / 'kohakuriver-containers'),
                                                  docker_host=daemon['docker_host'], state_dir=str(tmp_path / 'state')))
        while process.poll() is None and bytes_read_by(process.pid) < 96 * 1024 * 1024:
            time.sleep(0.01)
        assert process.poll() is None, 'the load ended before the daemon could be killed'
        daemon['kill']()
        stdout = process.stdout.read()
        process.wait(120)
    result = json.loads([line for line in stdout.splitlines() if line.startswith('{')][-1])
    msg = one_line_failure(result)
    pattern = r'Loading %s into the Docker daemon failed after (\d+) of (\d+) bytes were sent: .*Connection.*\. ' \
        r'Nothing was tagged; sync again once the daemon answers\.$' % re.escape(path)
    sent, total = [int(number) for number in re.match(pattern, msg).groups()] if re.match(pattern, msg) else (None, None)
    assert sent is not None and 0 < sent < total and abs(total - os.path.getsize(path)) < 4096, msg
