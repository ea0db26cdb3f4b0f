"""The config an environment image gets: the base image's runtime, the container's settings, the image labels.

The expected image configs below are what Docker 20.10 and 26 committed on the test bed for these requests
(docker inspect of the image); committed_config() must predict them, because packaging compares its prediction
for the container with the image config a sidecar recorded.
"""

from __future__ import annotations

from hypothesis import given, strategies as st

from ansible_collections.kohakuriver.docker.plugins.module_utils.image_config import (
    base_runtime, commit_config, committed_config, expected_runtime_config, image_labels, runtime_config,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import KEEP_ALIVE, LABEL_ENV, LABEL_MANAGED, LABEL_TIMESTAMP

ENV = 'my-env'
OURS = {LABEL_MANAGED: 'true', LABEL_ENV: ENV}
BUSYBOX = {'Entrypoint': None, 'Cmd': ['sh'], 'Env': None, 'WorkingDir': '', 'User': '', 'Labels': None}
WITH_ENTRYPOINT = {'Entrypoint': ['/bin/sh', '-c', 'echo ep-$0 "$@"; exec "$@"', 'x'], 'Cmd': ['echo', 'base-cmd'],
                   'Env': ['FOO=bar'], 'WorkingDir': '/tmp', 'User': 'nobody', 'StopSignal': 'SIGUSR1',
                   'Labels': {'org.example.base': 'yes'}}


def environment_container(base, env=('A=1',), labels=None):
    """The Config Docker gives a container made by kohakuriver.docker.container from base (image values merged in)."""
    merged = dict(labels or {}, **OURS)
    merged.update(base.get('Labels') or {})
    return {'Hostname': 'a1b2c3', 'Image': 'base', 'Entrypoint': list(KEEP_ALIVE), 'Cmd': None,
            'Env': list(env) + list(base.get('Env') or []), 'WorkingDir': base.get('WorkingDir') or '',
            'User': base.get('User') or '', 'StopSignal': 'SIGTERM', 'Labels': merged, 'OnBuild': None}


def committed(container, base, timestamp=1700000000):
    return committed_config(commit_config(container, base, ENV, timestamp), container)


def test_a_base_without_entrypoint_gives_an_image_that_runs_its_cmd_or_the_given_command():
    container = environment_container(BUSYBOX)
    conf = commit_config(container, BUSYBOX, ENV, 1700000000)
    # [] and not None: the daemon fills a null Entrypoint from the container, which is the keep-alive loop.
    assert conf['Entrypoint'] == [] and conf['Cmd'] == ['sh']
    image = committed(container, BUSYBOX)
    assert image['Entrypoint'] == [] and image['Cmd'] == ['sh']
    assert image['Env'] == ['A=1'] and image['StopSignal'] == 'SIGTERM'


def test_a_base_entrypoint_cmd_workdir_user_env_and_stop_signal_survive():
    container = environment_container(WITH_ENTRYPOINT)
    image = committed(container, WITH_ENTRYPOINT)
    assert image['Entrypoint'] == WITH_ENTRYPOINT['Entrypoint'] and image['Cmd'] == ['echo', 'base-cmd']
    assert image['WorkingDir'] == '/tmp' and image['User'] == 'nobody' and image['StopSignal'] == 'SIGUSR1'
    assert image['Env'] == ['A=1', 'FOO=bar']


def test_a_base_entrypoint_without_cmd_takes_no_cmd_from_the_container():
    base = dict(WITH_ENTRYPOINT, Cmd=None)
    container = dict(environment_container(base), Entrypoint=None, Cmd=['sleep', 'infinity'])
    image = committed(container, base)
    assert image['Entrypoint'] == base['Entrypoint'] and not image.get('Cmd')


def test_a_base_with_neither_entrypoint_nor_cmd_gets_the_containers_cmd():
    # Docker's merge fills an empty Cmd from the container; an environment container made here has none.
    base = dict(BUSYBOX, Cmd=None)
    assert committed(environment_container(base), base)['Cmd'] is None
    assert committed(dict(environment_container(base), Cmd=['sleep', 'infinity']), base)['Cmd'] == ['sleep', 'infinity']


def test_an_older_image_with_our_keep_alive_as_base_counts_as_no_entrypoint():
    assert base_runtime({'Entrypoint': list(KEEP_ALIVE), 'Cmd': None}) == (None, None, None)
    old = {'Entrypoint': list(KEEP_ALIVE), 'Cmd': None, 'Labels': dict(OURS)}
    assert committed(environment_container(old), old)['Entrypoint'] == []


def test_image_labels_keep_the_base_and_user_labels_and_say_not_managed():
    container = environment_container(WITH_ENTRYPOINT, labels={'team': 'ml'})
    labels = committed(container, WITH_ENTRYPOINT, timestamp=1700000005)['Labels']
    assert labels == {'team': 'ml', 'org.example.base': 'yes', LABEL_MANAGED: 'false', LABEL_ENV: ENV,
                      LABEL_TIMESTAMP: '1700000005'}
    assert LABEL_TIMESTAMP not in image_labels({LABEL_TIMESTAMP: '1'}, ENV)


def test_the_prediction_for_a_container_equals_the_committed_image_whatever_the_timestamp():
    container = environment_container(WITH_ENTRYPOINT)
    image = committed(container, WITH_ENTRYPOINT, timestamp=1800000000)
    assert expected_runtime_config(container, WITH_ENTRYPOINT, ENV) == runtime_config(image, ENV)
    # A sidecar made before this change recorded the container's own config: it differs, so it is repackaged.
    assert runtime_config(container, ENV) != expected_runtime_config(container, WITH_ENTRYPOINT, ENV)


def test_what_docker_20_10_and_26_committed_is_predicted():
    """Image configs measured on both engines for a container made from busybox and from WITH_ENTRYPOINT."""
    measured = {
        'busybox': {'Entrypoint': [], 'Cmd': ['sh'], 'WorkingDir': '', 'User': '', 'Env': ['A=1'], 'StopSignal': 'SIGTERM',
                    'Labels': {LABEL_ENV: 'e', LABEL_MANAGED: 'false', LABEL_TIMESTAMP: '123'}},
        'entrypoint': {'Entrypoint': WITH_ENTRYPOINT['Entrypoint'], 'Cmd': ['echo', 'base-cmd'], 'WorkingDir': '/tmp',
                       'User': 'nobody', 'Env': ['A=1', 'FOO=bar'], 'StopSignal': 'SIGUSR1',
                       'Labels': {LABEL_ENV: 'e', LABEL_MANAGED: 'false', LABEL_TIMESTAMP: '123'}},
    }
    for name, base in (('busybox', BUSYBOX), ('entrypoint', dict(WITH_ENTRYPOINT, Labels=None))):
        container = environment_container(base)
        container['Labels'] = {LABEL_MANAGED: 'true', LABEL_ENV: 'e'}
        image = committed_config(commit_config(container, base, 'e', 123), container)
        assert runtime_config(image, 'e') == runtime_config(measured[name], 'e'), name


TEXT = st.text(alphabet='abcxyz/-_ ', max_size=6)
COMMANDS = st.one_of(st.none(), st.just([]), st.lists(TEXT, min_size=1, max_size=3), st.just(list(KEEP_ALIVE)))
CONFIGS = st.fixed_dictionaries({
    'Entrypoint': COMMANDS, 'Cmd': COMMANDS, 'WorkingDir': st.one_of(st.just(''), TEXT), 'User': st.one_of(st.just(''), TEXT),
    'Env': st.one_of(st.none(), st.lists(st.sampled_from(['A=1', 'A=2', 'B=3', 'PATH=/bin']), max_size=3)),
    'StopSignal': st.sampled_from([None, '', 'SIGTERM', 'SIGINT']),
    'Labels': st.one_of(st.none(), st.dictionaries(st.sampled_from([LABEL_MANAGED, LABEL_ENV, LABEL_TIMESTAMP, 'x']),
                                                   st.sampled_from(['true', '1', ''])))})


@given(container=CONFIGS, base=CONFIGS)
def test_no_image_gets_our_keep_alive_nor_the_managed_label(container, base):
    image = committed(container, base)
    assert image['Labels'][LABEL_MANAGED] == 'false' and image['Labels'][LABEL_ENV] == ENV
    assert image.get('Entrypoint') != KEEP_ALIVE
    assert expected_runtime_config(container, base, ENV) == runtime_config(image, ENV)
