"""A task whose attach stream delivered nothing still returns its output, read back from the container's logs."""

from __future__ import annotations

import io

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.output import Tail
from ansible_collections.kohakuriver.docker.plugins.module_utils.task import recover_output_from_logs

pytestmark = pytest.mark.integration


def test_output_is_recovered_from_the_logs_of_a_finished_container(docker_hosts, unique_env):
    for node in docker_hosts[1:]:
        client = docker.DockerClient(base_url=node['docker_host'], version='auto')
        container = client.containers.create('kohakuriver-test/busybox:latest', ['sh', '-c', 'echo out; echo err >&2'],
                                             name='%s-%s' % (unique_env, node['name']))
        try:
            container.start()
            assert container.wait(timeout=60)['StatusCode'] == 0
            outputs, tails = (io.BytesIO(), io.BytesIO()), (Tail(), Tail())
            recover_output_from_logs(client, container.id, outputs, tails)
            assert (outputs[0].getvalue(), outputs[1].getvalue()) == (b'out\n', b'err\n'), node['name']
            assert (tails[0].text(), tails[1].text()) == ('out\n', 'err\n')
            already = (Tail(), Tail())
            already[0].add(b'x')
            untouched = (io.BytesIO(), io.BytesIO())
            recover_output_from_logs(client, container.id, untouched, already)
            assert untouched[0].getvalue() == b'' and already[0].total == 1
        finally:
            container.remove(force=True)
            client.close()
