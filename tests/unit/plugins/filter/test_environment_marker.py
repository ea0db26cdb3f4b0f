"""environment_marker gives what the environment role's template gave before it."""

from __future__ import annotations

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from ansible_collections.kohakuriver.docker.plugins.filter.environment_marker import environment_marker
from ansible_collections.kohakuriver.docker.plugins.filter.environment_plan import environment_plan

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


def test_the_marker_drops_file_contents_only():
    digests = environment_plan(DEFINITION, '', STEPS, FORMAT)['digests']
    marker = environment_marker(DEFINITION, FORMAT, 'apt-get', digests)
    template = render(
        "{{ d | combine({'files': d.files | map('dict2items') | map('rejectattr', 'key', 'eq', 'content')"
        " | map('items2dict') | list}) }}", d=DEFINITION)
    assert marker == {'format': FORMAT, 'name': 'my-env', 'image': 'python:3.11-slim', 'package_manager': 'apt-get',
                      'steps': digests, 'definition': template}
    assert marker['definition']['files'] == [{'dest': '/etc/motd', 'mode': '0644', 'owner': ''}]
