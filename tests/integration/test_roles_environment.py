"""The environment role, run with the kohakuriver.docker.environment playbook against the test bed's Host."""

from __future__ import annotations

import os
import stat
import subprocess

import pytest

from support.ansible_runs import run_playbook
from roles_support import (  # noqa: F401 pylint: disable=unused-import
    BUSYBOX, PYTHON, environments_made, exec_in, marker, role_inventory, sidecar_layers, task_block, tarballs,
)

pytestmark = pytest.mark.integration

PLAYBOOK = 'kohakuriver.docker.environment'
# Quotes, $, backquotes and a space in content and path: written through stdin and argv, so the file holds exactly
# this text (a shell that saw it while writing would have run the substitutions).
TRICKY_CONTENT = '#!/bin/sh\necho "it\'s $1" `not run` $(not run either)\n'
TRICKY_DEST = "/opt/my app/it's.sh"


@pytest.fixture
def inventory(testbed, shared_dir, tmp_path):
    return role_inventory(tmp_path / 'inventory.json', testbed, shared_dir, tmp_path / 'state')


def build(inventory, definitions, *args, **extra):
    extra_vars = dict(extra, kohakuriver_environments=definitions)
    return run_playbook(PLAYBOOK, inventory, extra_vars=extra_vars, args=args)


def test_busybox_environment_is_built_once_and_packaged_once(testbed, inventory, shared_dir, unique_env,
                                                             environments_made):
    environments_made.append(unique_env)
    definition = [{
        'name': unique_env, 'image': BUSYBOX,
        'files': [{'dest': TRICKY_DEST, 'content': TRICKY_CONTENT, 'mode': '0755'}],
        'commands': ['"/opt/my app/it\'s.sh" world > /opt/greeting'],
    }]
    first = build(inventory, definition)
    assert first.rc == 0, first
    assert first.changed('host') > 0
    made = tarballs(shared_dir, unique_env)
    assert len(made) == 1

    assert exec_in(testbed, unique_env, ['cat', TRICKY_DEST]) == (0, TRICKY_CONTENT)
    assert exec_in(testbed, unique_env, ['stat', '-c', '%a', TRICKY_DEST]) == (0, '755\n')
    assert exec_in(testbed, unique_env, ['cat', '/opt/greeting']) == (0, "it's world\n")
    applied = marker(testbed, unique_env)
    assert applied['package_manager'] == 'none'
    assert applied['definition']['files'] == [{'dest': TRICKY_DEST, 'mode': '0755', 'owner': ''}]

    again = build(inventory, definition)
    assert again.rc == 0, again
    assert again.recap['host']['changed'] == 0, again
    assert tarballs(shared_dir, unique_env) == made

    checked = build(inventory, definition, '--check')
    assert checked.rc == 0 and checked.recap['host']['changed'] == 0, checked

    definition[0]['files'].append({'dest': '/etc/added', 'content': 'later\n'})
    predicted = build(inventory, definition, '--check')
    assert predicted.rc == 0 and predicted.recap['host']['changed'] > 0, predicted
    assert exec_in(testbed, unique_env, ['cat', '/etc/added'])[0] != 0
    assert tarballs(shared_dir, unique_env) == made


def test_a_change_reruns_only_the_steps_from_it_on_and_packages_again(testbed, inventory, shared_dir, unique_env,
                                                                      environments_made):
    environments_made.append(unique_env)
    definition = {'name': unique_env, 'image': PYTHON, 'python_packages': ['six'],
                  'commands': ['python3 -c "import six" && touch /opt/commands-ran']}
    first = build(inventory, [definition])
    assert first.rc == 0, first
    assert exec_in(testbed, unique_env, ['python3', '-c', 'import six; print(six.__name__)']) == (0, 'six\n')
    assert marker(testbed, unique_env)['package_manager'] == 'apt-get'
    # Caches are gone: pip kept none, and the CA bundle used for the downloads was removed.
    assert exec_in(testbed, unique_env, ['sh', '-c', 'ls /root/.cache/pip /tmp/kohakuriver-ca-bundle.pem 2>&1'])[0] != 0
    before = tarballs(shared_dir, unique_env)
    assert len(before) == 1
    layers_before = sidecar_layers(shared_dir, before[0])

    exec_in(testbed, unique_env, ['rm', '/opt/commands-ran'])
    definition['files'] = [{'dest': '/etc/motd', 'content': 'data science\n'}]
    changed = build(inventory, [definition])
    assert changed.rc == 0, changed
    pip_tasks = task_block(changed.stdout, 'Install the Python packages with pip')
    assert pip_tasks and 'changed: [host]' not in pip_tasks[0], 'pip ran although python_packages did not change'
    assert exec_in(testbed, unique_env, ['cat', '/etc/motd']) == (0, 'data science\n')
    assert exec_in(testbed, unique_env, ['ls', '/opt/commands-ran'])[0] == 0, 'commands come after files and rerun'
    after = tarballs(shared_dir, unique_env)
    assert len(after) == 1 and after != before, 'a changed environment is packaged again (keep 1)'
    layers_after = sidecar_layers(shared_dir, after[0])
    assert layers_after[:-1] == layers_before and len(layers_after) == len(layers_before) + 1, 'one delta layer'


def test_vps_ready_environment_lets_root_in_by_key_only(testbed, inventory, unique_env, environments_made):
    environments_made.append(unique_env)
    run = build(inventory, [{'name': unique_env, 'image': PYTHON, 'vps': True}])
    assert run.rc == 0, run
    code, settings = exec_in(testbed, unique_env, ['/usr/sbin/sshd', '-T'])
    assert code == 0, settings
    lines = settings.splitlines()
    assert 'permitrootlogin without-password' in lines or 'permitrootlogin prohibit-password' in lines
    assert 'passwordauthentication no' in lines and 'kbdinteractiveauthentication no' in lines
    assert exec_in(testbed, unique_env, ['test', '-d', '/run/sshd'])[0] == 0
    assert exec_in(testbed, unique_env, ['sh', '-c', 'ls /etc/ssh/ssh_host_*_key'])[0] == 0


def test_system_packages_on_an_image_without_package_manager_fail_clearly(inventory, unique_env, environments_made):
    environments_made.append(unique_env)
    run = build(inventory, [{'name': unique_env, 'image': BUSYBOX, 'system_packages': ['curl']}])
    assert run.rc != 0
    assert 'has none of apt-get, apk, dnf, microdnf or yum, so system_packages and vps cannot be installed' in run.stdout


def test_another_image_is_refused_until_recreate_is_asked(testbed, inventory, shared_dir, unique_env,
                                                          environments_made):
    environments_made.append(unique_env)
    assert build(inventory, [{'name': unique_env, 'image': BUSYBOX}]).rc == 0
    moved = {'name': unique_env, 'image': PYTHON}
    refused = build(inventory, [moved])
    assert refused.rc != 0
    assert 'Add recreate: true to the entry to rebuild it from the new image' in refused.stdout
    assert len(tarballs(shared_dir, unique_env)) == 1

    rebuilt = build(inventory, [dict(moved, recreate=True)])
    assert rebuilt.rc == 0, rebuilt
    assert marker(testbed, unique_env)['image'] == PYTHON
    assert exec_in(testbed, unique_env, ['python3', '--version'])[0] == 0


def docker_cli(testbed, *args):
    """The plain docker CLI on the Host, a client this collection did not write; (exit code, stdout)."""
    done = subprocess.run(['docker', '-H', testbed['host']['docker_host']] + list(args), capture_output=True, text=True,
                          check=False)
    return done.returncode, done.stdout.strip()


def test_absent_with_purge_removes_container_tarballs_lock_images_and_record(testbed, inventory, shared_dir, tmp_path,
                                                                             unique_env, environments_made):
    environments_made.append(unique_env)
    base = 'kohakuriver/%s:base' % unique_env
    assert build(inventory, [{'name': unique_env, 'image': BUSYBOX}]).rc == 0
    record = tmp_path / 'state' / 'environments' / ('%s.json' % unique_env)
    lock = shared_dir / 'kohakuriver-containers' / ('.%s.package.lock' % unique_env)
    assert record.is_file() and lock.is_file() and len(tarballs(shared_dir, unique_env)) == 1
    base_id = docker_cli(testbed, 'image', 'inspect', '-f', '{{.Id}}', base)[1]
    # A kohakuriver/<env> image made by hand (no labels of this collection), and a user's container of the base image.
    user, by_hand = 'krtest-user-%s' % unique_env, 'kohakuriver/%s:by-hand' % unique_env
    assert docker_cli(testbed, 'create', '--name', user, BUSYBOX, 'true')[0] == 0
    try:
        assert docker_cli(testbed, 'commit', user, by_hand)[0] == 0
        docker_cli(testbed, 'rm', user)
        assert docker_cli(testbed, 'create', '--name', user, base, 'true')[0] == 0

        kept = build(inventory, [{'name': unique_env, 'state': 'absent'}])
        assert kept.rc == 0, kept
        assert len(tarballs(shared_dir, unique_env)) == 1, 'absent alone keeps the tarballs, as KohakuRiver does'
        purge = [{'name': unique_env, 'state': 'absent', 'purge': True}]
        checked = build(inventory, purge, '--check')
        assert checked.rc == 0 and len(tarballs(shared_dir, unique_env)) == 1 and lock.is_file(), checked
        in_use = build(inventory, purge)
        assert in_use.rc == 0, in_use
        assert tarballs(shared_dir, unique_env) == [] and not record.exists() and not lock.exists()
        assert docker_cli(testbed, 'image', 'inspect', base)[0] == 0, 'a container uses it: kept'
        assert '%s: a container uses it' % base_id in in_use.stdout

        docker_cli(testbed, 'rm', user)
        checked = build(inventory, purge, '--check')
        assert checked.rc == 0 and checked.changed('host') == 1 and docker_cli(testbed, 'image', 'inspect', base)[0] == 0
        purged = build(inventory, purge)
        assert purged.rc == 0 and purged.changed('host') == 1, purged
        assert docker_cli(testbed, 'image', 'inspect', base)[0] != 0 and docker_cli(testbed, 'image', 'inspect', base_id)[0] != 0
        assert docker_cli(testbed, 'image', 'inspect', by_hand)[0] == 0, 'an image this collection did not commit is kept'
        again = build(inventory, purge)
        assert again.rc == 0 and again.changed('host') == 0, again
    finally:
        docker_cli(testbed, 'rm', '-f', user)
    with pytest.raises(Exception):
        exec_in(testbed, unique_env, ['true'])


def test_definitions_are_checked_before_anything_runs(inventory, unique_env):
    twice = build(inventory, [{'name': unique_env, 'image': BUSYBOX}, {'name': unique_env, 'image': PYTHON}])
    assert twice.rc != 0 and 'declares %s more than once' % unique_env in twice.stdout
    unknown = build(inventory, [{'name': unique_env, 'image': BUSYBOX, 'packages': ['x']}])
    assert unknown.rc != 0 and 'packages' in unknown.stdout and 'Validation of arguments failed' in unknown.stdout
    no_image = build(inventory, [{'name': unique_env}])
    assert no_image.rc != 0 and 'Environment %s has no image' % unique_env in no_image.stdout


def test_state_record_is_readable_by_everyone_and_names_the_tarball(testbed, inventory, shared_dir, tmp_path,
                                                                    unique_env, environments_made):
    environments_made.append(unique_env)
    assert build(inventory, [{'name': unique_env, 'image': BUSYBOX}]).rc == 0
    record = tmp_path / 'state' / 'environments' / ('%s.json' % unique_env)
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o644
    assert os.path.basename(__import__('json').loads(record.read_text())['tarball']) == tarballs(shared_dir, unique_env)[0]


def test_check_mode_on_a_new_environment_predicts_changes_and_makes_nothing(testbed, inventory, shared_dir, unique_env,
                                                                            environments_made):
    environments_made.append(unique_env)
    definition = [{'name': unique_env, 'image': PYTHON, 'system_packages': ['python-is-python3'],
                   'python_packages': ['six'], 'vps': True}]
    checked = build(inventory, definition, '--check')
    assert checked.rc == 0, checked
    assert checked.changed('host') > 0
    assert tarballs(shared_dir, unique_env) == []
    with pytest.raises(Exception):
        exec_in(testbed, unique_env, ['true'])


def test_kohakuriver_environment_names_builds_only_the_named_ones(testbed, inventory, shared_dir, unique_env,
                                                                  environments_made):
    chosen, other = unique_env, unique_env + '-other'
    environments_made.extend([chosen, other])
    definitions = [{'name': chosen, 'image': BUSYBOX}, {'name': other, 'image': BUSYBOX}]
    built = build(inventory, definitions, kohakuriver_environment_names=[chosen])
    assert built.rc == 0, built
    assert len(tarballs(shared_dir, chosen)) == 1 and tarballs(shared_dir, other) == []
    assert exec_in(testbed, chosen, ['true'])[0] == 0
    with pytest.raises(Exception):
        exec_in(testbed, other, ['true'])
    undeclared = build(inventory, definitions, kohakuriver_environment_names=[unique_env + '-never'])
    assert undeclared.rc != 0 and 'which kohakuriver_environments does not declare' in undeclared.stdout, undeclared
