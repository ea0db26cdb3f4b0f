"""--limit chooses the runner of the one-runner playbooks (task_submit here), -e kr_node stays its alias, and a limit
that names several runners, or a kr_node outside it, is one line before anything runs; one_host.yml still holds under
a runner's --limit. Run for real with ansible-playbook against the test inventory."""

from __future__ import annotations

import pytest

from support.ansible_runs import run_playbook
from playbook_support import cluster_inventory
from runner_helpers import remove_env_from_runners
from tarball_factory import TarballFactory

pytestmark = pytest.mark.integration


@pytest.fixture
def cluster(testbed, shared_dir, tmp_path, unique_env):
    """The test inventory (with colliding group variables such as node=not-a-node) and a tarball of unique_env."""
    inventory = cluster_inventory(tmp_path, testbed, shared_dir)
    maker = TarballFactory(testbed['host']['docker_host'], shared_dir / 'kohakuriver-containers')
    maker.make(unique_env)
    yield dict(inventory=inventory, env=unique_env)
    maker.cleanup()
    remove_env_from_runners(testbed, unique_env)


def submit(cluster, task_id, *args):
    return run_playbook('kohakuriver.docker.task_submit', cluster['inventory'],
                        args=['-e', 'kr_env=' + cluster['env'], '-e', 'kr_command="echo ran on $HOSTNAME"',
                              '-e', 'kr_task_id=' + task_id] + list(args))


def test_limit_chooses_the_runner_and_kr_node_stays_its_alias(cluster, unique_env):
    limited = submit(cluster, unique_env + '-limit', '--limit', 'runner2')
    assert limited.rc == 0 and set(limited.recap) == {'runner2'} and limited.changed('runner2') == 1, limited
    assert 'Task %s-limit in %s on runner2 exited with rc 0' % (unique_env, cluster['env']) in limited.stdout

    aliased = submit(cluster, unique_env + '-alias', '-e', 'kr_node=runner1')
    assert aliased.rc == 0 and aliased.changed('runner1') == 1 and aliased.changed('runner2') == 0, aliased
    assert 'on runner1 exited with rc 0' in aliased.stdout


def test_a_limit_of_two_runners_or_a_kr_node_outside_it_is_one_line_and_runs_nothing(cluster, unique_env):
    two = submit(cluster, unique_env + '-two', '--limit', 'runner1,runner2')
    assert two.rc != 0 and two.changed() == 0, two
    assert 'names 2 runners (runner1, runner2), and this playbook works on one: name one, for example --limit runner1.' in two.stdout

    outside = submit(cluster, unique_env + '-outside', '--limit', 'runner2', '-e', 'kr_node=runner1')
    assert outside.rc != 0 and outside.changed() == 0, outside
    assert '-e kr_node=runner1 is outside --limit runner2' in outside.stdout

    none = submit(cluster, unique_env + '-none')
    assert none.rc != 0 and 'Choose the runner: --limit runner1 (or -e kr_node=runner1).' in none.stdout, none


def test_the_one_host_check_holds_under_a_runners_limit_and_the_host_plays_are_skipped(cluster):
    run = run_playbook('kohakuriver.docker.tar_list', cluster['inventory'], args=['--limit', 'runner1'])
    assert run.rc == 0 and 'Check that the group kohakuriver_host holds exactly one host' in run.stdout, run
    assert 'skipping: no hosts matched' in run.stdout and run.changed() == 0


ROLE_TAGS = {'kohakuriver_docker', 'kohakuriver_registry', 'kohakuriver_storage', 'kohakuriver_signing', 'kohakuriver_gpu', 'kohakuriver_presync',
             'kohakuriver_sync', 'kohakuriver_build', 'kohakuriver_package'}


def listed_tags(stdout):
    return set(tag.strip() for line in stdout.splitlines() if 'TASK TAGS:' in line
               for tag in line.split('TASK TAGS:', 1)[1].strip(' []').split(',') if tag.strip())


def test_list_tags_shows_the_documented_role_tags_and_tags_keep_the_one_host_check(cluster):
    site = run_playbook('kohakuriver.docker.site', cluster['inventory'], args=['--list-tags'])
    assert site.rc == 0 and listed_tags(site.stdout) == ROLE_TAGS | {'always'}, site
    runner = run_playbook('kohakuriver.docker.runner', cluster['inventory'], args=['--list-tags'])
    assert listed_tags(runner.stdout) >= {'kohakuriver_docker', 'kohakuriver_gpu', 'kohakuriver_presync', 'kohakuriver_sync'}, runner
    environment = run_playbook('kohakuriver.docker.environment', cluster['inventory'], args=['--list-tags'])
    assert listed_tags(environment.stdout) >= {'kohakuriver_build', 'kohakuriver_package'}, environment
    checked = run_playbook('kohakuriver.docker.tar_list', cluster['inventory'], args=['--tags', 'kohakuriver_sync'])
    assert checked.rc == 0 and 'Check that the group kohakuriver_host holds exactly one host' in checked.stdout, checked
