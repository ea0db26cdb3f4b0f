"""Helpers of the playbook tests: group variables named like the playbooks' parameters used to be, and the lines a
playbook's summary printed."""

from __future__ import annotations

import json

from support.ansible_runs import write_inventory

# Group variables a real inventory may carry for its own purposes, named like the playbook parameters were before they
# took the kr_ prefix. Every value would change or break a run that took it for a parameter.
COLLIDING = {
    'env': 'production', 'envs': 'production', 'image': 'not-an-image', 'node': 'not-a-node', 'nodes': 'not-a-node',
    'state': 'absent', 'tarball': 'production-1700000000.tar', 'keep': 0, 'force': True, 'pause': True, 'pull': 'always',
    'adopt': True, 'prune': True, 'vps': 'production', 'command': 'exit 3', 'argv': ['false'], 'cpus': 64,
    'memory': '1k', 'gpus': 'all', 'task_id': 'production', 'task_timeout': 1, 'timeout': 1, 'authorized_keys': 'not-a-key',
    'port': 1, 'bind_address': '203.0.113.1', 'ssh_host': 'production.invalid', 'key_dir': '/nonexistent',
    'mounts': ['/nonexistent:/nonexistent'], 'snapshot': True, 'snapshot_keep': 0,
}


def colliding_inventory(path, testbed, shared_dir, extra_vars=None):
    """The test bed's inventory (conftest.write_inventory) with COLLIDING as group variables of all hosts."""
    return write_inventory(path, testbed, shared_dir, extra_vars=dict(COLLIDING, **(extra_vars or {})))


def cluster_inventory(tmp_path, testbed, shared_dir, extra_vars=None):
    """colliding_inventory in tmp_path/inventory.json with a state folder of the test's own (tmp_path/state)."""
    return colliding_inventory(tmp_path / 'inventory.json', testbed, shared_dir,
                               dict({'kohakuriver_state_dir': str(tmp_path / 'state')}, **(extra_vars or {})))


def summary(run, title='Say what was done'):
    """The message(s) of the debug task titled title, as one string (msg may be a string or a list)."""
    block = run.stdout.split('TASK [%s]' % title, 1)[1].split('\nTASK [', 1)[0].split('\nPLAY RECAP', 1)[0]
    text = block[block.index('{'):block.rindex('}') + 1]
    msg = json.loads(text)['msg']
    return ' '.join(msg) if isinstance(msg, list) else msg
