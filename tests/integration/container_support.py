"""Helpers shared by the environment container tests: engines, cleanup, registry images of one test."""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request
import uuid

import docker
import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import container_name

ENGINES = ['host', 'runner1', 'runner2']
UNREACHABLE = 'unix:///var/tmp/kohakuriver-no-such-daemon.sock'


def engine_fixture(docker_hosts, name):
    for engine in docker_hosts:
        if engine['name'] == name:
            return engine
    pytest.fail('the test bed has no engine %s' % name)


def client(docker_host):
    return docker.DockerClient(base_url=docker_host, version='auto', timeout=120)


@contextlib.contextmanager
def removed_afterwards(docker_host, env):
    """Remove kohakuriver-env-<env> (and a half-recreated leftover of it) from docker_host when the test ends."""
    try:
        yield
    finally:
        with contextlib.closing(client(docker_host)) as api:
            for entry in api.api.containers(all=True, filters={'name': container_name(env)}):
                names = [name.lstrip('/') for name in entry['Names']]
                if any(name == container_name(env) or name.startswith(container_name(env) + '.replaced-')
                       for name in names):
                    api.api.remove_container(entry['Id'], force=True)


@pytest.fixture(name='host')
def host_engine(docker_hosts):
    """The Host engine of the test bed (fixture of the container playbook tests)."""
    return engine_fixture(docker_hosts, 'host')


@pytest.fixture(name='env')
def host_env(host, unique_env):
    """A fresh environment name whose container is removed from the Host when the test ends."""
    with removed_afterwards(host['docker_host'], unique_env):
        yield unique_env


def inspect(docker_host, env):
    with contextlib.closing(client(docker_host)) as api:
        try:
            return api.api.inspect_container(container_name(env))
        except docker.errors.NotFound:
            return None


def make_foreign(docker_host, env, image, running=True):
    """A container with our name but none of our labels, like one made by hand or by KohakuRiver itself."""
    with contextlib.closing(client(docker_host)) as api:
        created = api.api.create_container(image, name=container_name(env), labels={'made-by': 'hand'},
                                           entrypoint=['sh', '-c', "trap 'exit 0' TERM; while :; do sleep 1; done"])
        if running:
            api.api.start(created['Id'])
        return created['Id']


def exec_output(docker_host, env, argv):
    with contextlib.closing(client(docker_host)) as api:
        return api.containers.get(container_name(env)).exec_run(argv).output.decode()


class RegistryImage(object):
    """An image pushed to the test registry under a repository of its own, deleted again afterwards.

    A repository of its own matters: deleting a manifest by digest deletes every tag of it in that repository.
    """

    def __init__(self, registry, base):
        self.registry = registry
        self.base = base
        self.repository = '%s/krtest-%s/busybox' % (registry, uuid.uuid4().hex[:10])
        self.reference = self.repository + ':latest'
        self.pushed = False

    def push(self, docker_host, label=None):
        """Tag base (or a build of it carrying label) as the reference, push it, and drop the local tag."""
        with contextlib.closing(client(docker_host)) as api:
            if label:
                dockerfile = ('FROM %s\nLABEL krtest=%s\n' % (self.base, label)).encode()
                image, _logs = api.images.build(fileobj=io.BytesIO(dockerfile), tag=self.reference, pull=False, rm=True)
                image_id = image.id
            else:
                api.images.get(self.base).tag(self.reference)
                image_id = api.images.get(self.reference).id
            for event in api.api.push(self.repository, tag='latest', stream=True, decode=True):
                assert 'error' not in event, event
            self.pushed = True
            api.images.remove(self.reference)
            return image_id

    def delete(self):
        if not self.pushed:
            return
        url = 'http://%s/v2/%s/manifests/latest' % (self.registry, self.repository.split('/', 1)[1])
        accept = ', '.join(['application/vnd.docker.distribution.manifest.v2+json',
                            'application/vnd.oci.image.manifest.v1+json'])
        with urllib.request.urlopen(urllib.request.Request(url, method='HEAD', headers={'Accept': accept})) as answer:
            digest = answer.headers['Docker-Content-Digest']
        delete_url = url.rsplit('/', 1)[0] + '/' + digest
        urllib.request.urlopen(urllib.request.Request(delete_url, method='DELETE')).close()


def drop_local_image(docker_host, reference):
    """Remove the local tag reference and the digest references a pull of its repository left."""
    repository = reference.rsplit(':', 1)[0] if '/' not in reference.rsplit(':', 1)[-1] else reference
    with contextlib.closing(client(docker_host)) as api:
        for image in api.images.list(name=repository):
            for name in image.attrs.get('RepoTags') or []:
                if name == reference:
                    api.images.remove(name)
            for name in image.attrs.get('RepoDigests') or []:
                if name.startswith(repository + '@'):
                    with contextlib.suppress(docker.errors.NotFound):
                        api.images.remove(name)


def ssh_environment(testbed):
    """The module's environment for the Docker SDK's ssh:// transport: the test bed's agent and known hosts."""
    ssh = testbed['ssh']
    return dict(SSH_AUTH_SOCK=ssh['agent_socket'], HOME=ssh['home'])


def one_line(text):
    return '\n' not in text


def pretty(result):
    return json.dumps(result, indent=1, sort_keys=True)
