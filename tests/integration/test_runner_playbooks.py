"""The runner playbooks run for real with ansible-playbook against the test inventory (Host + both runner nodes), whose
group variables are named like the playbooks' parameters were before kr_ (playbook_support.COLLIDING): they change nothing."""

from __future__ import annotations

import os
import re

import docker
import pytest

from support.ansible_runs import run_playbook
from playbook_support import cluster_inventory, summary
from runner_helpers import image_id_on, remove_env_from
from tarball_factory import TarballFactory, read_sidecar

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(testbed, shared_dir, tmp_path, unique_env):
    """The test inventory with a private state folder, a Host tarball factory, and two environments' names."""
    inventory = cluster_inventory(tmp_path, testbed, shared_dir)
    maker = TarballFactory(testbed['host']['docker_host'], shared_dir / 'kohakuriver-containers')
    envs = [unique_env, unique_env + '-b']
    clients = dict((node['name'], docker.DockerClient(base_url=node['docker_host'], version='auto'))
                   for node in testbed['runners'])
    nodes = dict((node['name'], dict(node, client=clients[node['name']])) for node in testbed['runners'])
    yield dict(inventory=inventory, factory=maker, envs=envs, clients=clients, nodes=nodes, shared_dir=shared_dir)
    maker.cleanup()
    for client in clients.values():
        for env in envs:
            remove_env_from(client, env)
        client.close()


def base_id(client, env):
    try:
        return client.api.inspect_image('kohakuriver/%s:base' % env)['Id']
    except docker.errors.NotFound:
        return None


def test_sync_playbook_loads_every_environment_on_every_runner_and_a_second_run_changes_nothing(cluster):
    tarballs = dict((env, cluster['factory'].make(env)) for env in cluster['envs'])
    checked = run_playbook('kohakuriver.docker.sync', cluster['inventory'], check=True)
    assert checked.rc == 0 and all(checked.changed(node) == 1 for node in cluster['clients']), checked
    would = 'runner1: %s: would load %s (check mode, nothing was loaded)' % (cluster['envs'][0], os.path.basename(tarballs[cluster['envs'][0]]))
    assert would in summary(checked, 'Say what was done, on every runner, in one report') and ': loaded ' not in checked.stdout
    assert all(base_id(client, env) is None for client in cluster['clients'].values() for env in cluster['envs'])

    first = run_playbook('kohakuriver.docker.sync', cluster['inventory'])
    assert first.rc == 0 and all(first.changed(node) == 1 for node in cluster['clients']), first
    for node in cluster['nodes'].values():
        for env, path in tarballs.items():
            assert base_id(node['client'], env) == image_id_on(node, read_sidecar(path)), node['name']
    assert re.search(r'%s: loaded %s \(.* verified\)' % (cluster['envs'][1], os.path.basename(tarballs[cluster['envs'][1]])),
                     first.stdout)

    second = run_playbook('kohakuriver.docker.sync', cluster['inventory'])
    assert second.rc == 0 and second.recap and second.changed() == 0, second
    assert set(second.recap) == set(cluster['clients'])
    assert '%s: up to date' % cluster['envs'][0] in second.stdout


def test_sync_playbook_takes_chosen_environments_and_nodes(cluster):
    for env in cluster['envs']:
        cluster['factory'].make(env)
    result = run_playbook('kohakuriver.docker.sync', cluster['inventory'],
                          args=['-e', 'kr_nodes=runner2', '-e', 'kr_envs=%s' % cluster['envs'][1]])
    assert result.rc == 0 and set(result.recap) == {'runner2'} and result.changed('runner2') == 1, result
    assert base_id(cluster['clients']['runner2'], cluster['envs'][1])
    assert base_id(cluster['clients']['runner2'], cluster['envs'][0]) is None
    assert base_id(cluster['clients']['runner1'], cluster['envs'][1]) is None


def test_task_submit_runs_the_command_and_prints_its_output_and_logs(cluster):
    env = cluster['envs'][0]
    cluster['factory'].make(env)
    (cluster['shared_dir'] / 'shared_data' / 'analyze.sh').write_text('echo "analysing $1"; echo "note" >&2\n')
    result = run_playbook('kohakuriver.docker.task_submit', cluster['inventory'],
                          args=['-e', 'kr_node=runner1', '-e', 'kr_env=%s' % env, '-e', 'kr_command="sh /shared/analyze.sh data.csv"',
                                '-e', 'kr_cpus=1', '-e', 'kr_memory=64m', '-e', 'kr_timeout=60', '-e', 'kr_task_id=submitted-1'])
    assert result.rc == 0 and result.changed('runner1') == 1, result
    assert 'Task submitted-1 in %s on runner1 exited with rc 0' % env in result.stdout
    assert '"analysing data.csv"' in result.stdout and '"note"' in result.stdout
    log_dir = cluster['shared_dir'] / 'logs' / 'submitted-1'
    assert 'Logs: %s/stdout.log' % log_dir in result.stdout
    assert (log_dir / 'stdout.log').read_text() == 'analysing data.csv\n'


def test_task_submit_fails_the_play_on_a_timeout_and_still_shows_the_logs(cluster):
    env = cluster['envs'][0]
    cluster['factory'].make(env)
    result = run_playbook('kohakuriver.docker.task_submit', cluster['inventory'],
                          args=['-e', 'kr_node=runner2', '-e', 'kr_env=%s' % env, '-e', 'kr_command="echo waiting; sleep 600"',
                                '-e', 'kr_timeout=2'])
    assert result.rc != 0 and result.recap['runner2']['failed'] == 1, result
    assert 'timed out after 2' in result.stdout and 'timed out and was stopped' in result.stdout
    assert '"waiting"' in result.stdout and 'Logs: ' in result.stdout


def test_task_submit_without_a_node_says_what_to_give(cluster):
    result = run_playbook('kohakuriver.docker.task_submit', cluster['inventory'], args=['-e', 'kr_env=x'])
    assert result.rc != 0 and '-e kr_node=runner1' in result.stdout, result


def test_sync_playbook_with_no_tarballs_does_nothing_and_says_so(cluster):
    result = run_playbook('kohakuriver.docker.sync', cluster['inventory'])
    assert result.rc == 0 and result.changed() == 0 and set(result.recap) == set(cluster['clients']), result
    assert 'No environments to sync.' in result.stdout


def test_sync_with_kr_prune_removes_the_superseded_image_and_keeps_the_new_one(cluster):
    env, runner = cluster['envs'][0], cluster['clients']['runner1']
    cluster['factory'].make(env)
    assert run_playbook('kohakuriver.docker.sync', cluster['inventory'], args=['-e', 'kr_nodes=runner1']).rc == 0
    old = base_id(runner, env)
    newer = cluster['factory'].make(env)
    kept = run_playbook('kohakuriver.docker.sync', cluster['inventory'], args=['-e', 'kr_nodes=runner1', '-e', 'kr_envs=' + env])
    assert kept.rc == 0 and base_id(runner, env) == read_sidecar(newer)['image_id'], kept
    assert runner.api.inspect_image(old), 'without kr_prune the superseded image stays'
    newest = cluster['factory'].make(env)
    pruned = run_playbook('kohakuriver.docker.sync', cluster['inventory'],
                          args=['-e', 'kr_nodes=runner1', '-e', 'kr_envs=' + env, '-e', 'kr_prune=true'])
    assert pruned.rc == 0 and base_id(runner, env) == read_sidecar(newest)['image_id'], pruned
    with pytest.raises(docker.errors.NotFound):
        runner.api.inspect_image(read_sidecar(newer)['image_id'])


def test_task_submit_in_check_mode_runs_nothing_and_says_so_and_takes_argv(cluster):
    env = cluster['envs'][0]
    cluster['factory'].make(env)
    checked = run_playbook('kohakuriver.docker.task_submit', cluster['inventory'], check=True,
                           extra_vars={'kr_node': 'runner1', 'kr_env': env, 'kr_command': 'echo ran', 'kr_task_id': 'checked-1'})
    assert checked.rc == 0, checked
    assert 'Task checked-1 in %s on runner1 did not run: Check mode: the task would run; nothing was started.' % env in checked.stdout
    assert not (cluster['shared_dir'] / 'logs' / 'checked-1').exists() and base_id(cluster['clients']['runner1'], env) is None

    argv = run_playbook('kohakuriver.docker.task_submit', cluster['inventory'],
                        extra_vars={'kr_node': 'runner1', 'kr_env': env, 'kr_argv': ['echo', 'two  spaces; $HOME'], 'kr_task_id': 'argv-1'})
    assert argv.rc == 0 and '"two  spaces; $HOME"' in argv.stdout, argv
    gpus = run_playbook('kohakuriver.docker.task_submit', cluster['inventory'],
                        extra_vars={'kr_node': 'runner1', 'kr_env': env, 'kr_command': 'true', 'kr_gpus': '0,1'})
    assert gpus.rc != 0 and 'gpu' in gpus.stdout.lower(), 'kr_gpus reaches the runner, which has no GPUs'
