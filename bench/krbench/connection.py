"""Scenario 7 (issue 14): the overhead of the kohakuriver.docker.env connection against community.docker's
docker_api connection, the same 20-task customisation of one environment container through each, with pipelining
off (Ansible's default) and on.

Both contenders talk to the Host's unix socket and run the tasks with the container's /usr/bin/python3 (no
interpreter discovery); before every run the folder the tasks make is removed, so every run changes the same
things.
"""

from __future__ import annotations

import json

from krbench import measure
from krbench.docker_state import testbed_state
from krbench.report import Target
from krbench.scenarios import Contender, Skipped, alternate, expect, new_table, require

OURS = 'kohakuriver.docker.env playbook'
THEIRS = 'community.docker.docker_api playbook'
PLAYBOOK = measure.PLAYBOOKS / 'connection_customise.yml'
ROOT = '/opt/krbench-conn'
TASKS = 20


def _inventory(ctx, env, container):
    common = {'ansible_python_interpreter': '/usr/bin/python3'}
    inventory = {'all': {'vars': common, 'hosts': {
        'ours': {'ansible_connection': 'kohakuriver.docker.env', 'ansible_host': env,
                 'kohakuriver_docker_host': ctx.host.docker_host},
        'docker_api': {'ansible_connection': 'community.docker.docker_api', 'ansible_host': container,
                       'ansible_docker_docker_host': ctx.host.docker_host},
    }}}
    path = ctx.work / 'connection-inventory.json'
    path.write_text(json.dumps(inventory, indent=1), encoding='utf-8')
    return path


def connection_overhead(ctx):
    require(module='container')
    if not (measure.COLLECTION.root / 'plugins' / 'connection' / 'env.py').is_file():
        raise Skipped('plugins/connection/env.py is not there yet')
    env = ctx.images.env + '-conn'
    container = 'kohakuriver-env-' + env
    image = testbed_state()['images']['python']
    pulled = not ctx.host.has_image(image)
    measure.run_module('container', dict(docker_host=ctx.host.docker_host, name=env, image=image, pull='missing'))
    inventory = _inventory(ctx, env, container)

    def reset():
        ctx.host.client.containers.get(container).exec_run(['rm', '-rf', ROOT])

    def run(host, pipelining):
        def go():
            sample = measure.run_playbook(PLAYBOOK, inventory, limit=host, extra_vars={'ansible_pipelining': pipelining})
            expect(sample.result[host]['ok'] == TASKS, '%s ran %d tasks, not %d' % (host, sample.result[host]['ok'], TASKS))
            return sample
        return go

    def changed(sample):
        return 'changed=%d' % sum(recap['changed'] for recap in sample.result.values())

    tables = []
    try:
        # the small size (the smoke run of scripts/test) measures Ansible's default alone, without a warm-up run
        for pipelining in (False,) if ctx.size == 'small' else (False, True):
            contenders = [Contender(OURS, run('ours', pipelining), reset, changed, rss_label=' (whole playbook)'),
                          Contender(THEIRS, run('docker_api', pipelining), reset, changed, rss_label=' (whole playbook)')]
            key = '7-pipelining-%s' % ('on' if pipelining else 'off')
            table = new_table(key, '7. Connection overhead, %d tasks, pipelining %s: Host (%s)' % (
                TASKS, 'on' if pipelining else 'off', ctx.host.label), THEIRS, contenders, [Target(OURS, 1.0)])
            alternate(ctx, table, contenders, warmup=ctx.size != 'small')
            table.notes.append('Every run starts without %s, so every run '
                               'makes the same changes%s.' % (ROOT, '' if ctx.size == 'small' else '; each contender ran once untimed first'))
            tables.append(table)
    finally:
        measure.run_module('container', dict(docker_host=ctx.host.docker_host, name=env, state='absent'))
        if pulled:
            ctx.host.remove_image(image)
    return tables
