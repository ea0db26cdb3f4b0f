"""`testbed.py up --fresh` (what .ci/run does) removes what the project made from an engine, and nothing else.

Run against the only runner of a private test bed (private_bed.py), never the shared one: the fresh start removes the
test bed's own images too, which the shared bed's runners serve to every other test.
"""

from __future__ import annotations

import json
import uuid

import pytest

from private_bed import PrivateBed
from testbed.engine import Engine
from testbed.fresh import remove_project_objects

pytestmark = pytest.mark.integration

BED = PrivateBed('/var/tmp/kr-fresh-bed', 'kr-frs-', registry_port=5068, ssh_port=2268)


@pytest.fixture(scope='module')
def engine():
    with BED.running() as runner:
        yield Engine(runner['name'], runner['docker_host'][len('unix://'):])


def _create(engine, image, name, labels=None):
    spec = json.dumps({'Image': image, 'Cmd': ['true'], 'Labels': labels or {}})
    answer = engine.call('POST', '/containers/create?name=' + name, body=spec, headers={'Content-Type': 'application/json'})
    return json.loads(answer[1])['Id']


def test_only_the_projects_containers_and_images_go(engine):
    registry = BED.state()['registry']
    test_image = BED.state()['images']['busybox']
    suffix = uuid.uuid4().hex[:10]
    foreign_tag = 'someone/keep-%s:1' % suffix
    engine.tag(test_image, foreign_tag)
    engine.tag(test_image, 'kohakuriver/krtest-%s:base' % suffix)
    foreign_id = _create(engine, foreign_tag, 'keep-%s' % suffix)
    labelled_name = 'kohakuriver-task-%s' % suffix
    _create(engine, foreign_tag, labelled_name, labels={'io.kohakuriver.docker.env': 'krtest-%s' % suffix})
    _create(engine, foreign_tag, 'kohakuriver-env-krtest-%s' % suffix)
    try:
        removed = remove_project_objects(engine, registry)
        assert 'removed container kohakuriver-env-krtest-%s' % suffix in removed
        assert 'removed container %s' % labelled_name in removed
        assert 'removed image kohakuriver/krtest-%s:base' % suffix in removed
        assert 'removed image %s' % test_image in removed
        names = [name for container in engine.containers() for name in container['Names']]
        assert '/keep-%s' % suffix in names and not any(suffix in name for name in names if 'keep-' not in name)
        assert engine.has_image(foreign_tag), 'an image the project did not make stays'
        assert not engine.has_image(test_image) and not engine.has_image('kohakuriver/krtest-%s:base' % suffix)
    finally:
        engine.remove_container(foreign_id)
        engine.remove_image(foreign_tag)
