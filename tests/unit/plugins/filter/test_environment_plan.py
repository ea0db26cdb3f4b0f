"""environment_plan gives what the environment role's templates gave before it."""

from __future__ import annotations

import json

import pytest
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.kohakuriver.docker.plugins.filter.environment_plan import FilterModule, environment_plan

FORMAT = 'kohakuriver.docker/environment-v1'
STEPS = ['image', 'system_packages', 'vps', 'python_packages', 'files', 'commands', 'cleanup']
DEFINITION = {
    'name': 'my-env', 'state': 'present', 'image': 'python:3.11-slim', 'system_packages': ['curl'], 'vps': False,
    'python_packages': ['numpy', 'pandas>=2,<3'],
    'files': [{'dest': '/etc/motd', 'mode': '0644', 'owner': '', 'content': 'héllo "world"\n'}],
    'commands': ['echo $HOME'], 'cleanup': True,
}


def render(expression, **variables):
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


def test_digests_and_fingerprint_are_those_of_the_template_expressions():
    plan = environment_plan(DEFINITION, '', STEPS, FORMAT)
    for step in STEPS:
        assert plan['digests'][step] == render("{{ d[s] | to_json(sort_keys=true) | hash('sha256') }}", d=DEFINITION, s=step)
    assert plan['fingerprint'] == render("{{ x | to_json(sort_keys=true) | hash('sha256') }}", x=plan['digests'])


def test_no_record_plans_every_step_and_a_matching_record_none():
    assert environment_plan(DEFINITION, '', STEPS, FORMAT)['steps'] == STEPS
    digests = environment_plan(DEFINITION, '', STEPS, FORMAT)['digests']
    record = json.dumps({'format': FORMAT, 'steps': digests})
    assert environment_plan(DEFINITION, '\n ' + record, STEPS, FORMAT)['steps'] == []


def test_a_changed_step_plans_it_and_every_later_step():
    digests = environment_plan(DEFINITION, '', STEPS, FORMAT)['digests']
    changed = dict(DEFINITION, python_packages=['numpy'])
    record = json.dumps({'format': FORMAT, 'steps': digests})
    assert environment_plan(changed, record, STEPS, FORMAT)['steps'] == ['python_packages', 'files', 'commands', 'cleanup']


@pytest.mark.parametrize('marker', ['not json', '{broken', '[1]', '{"format": "other", "steps": {}}', '{"steps": 3}'])
def test_an_unreadable_or_foreign_record_records_nothing(marker):
    assert environment_plan(DEFINITION, marker, STEPS, FORMAT)['steps'] == STEPS


def test_the_filters_are_registered_under_their_names():
    assert FilterModule().filters() == {'environment_plan': environment_plan}
