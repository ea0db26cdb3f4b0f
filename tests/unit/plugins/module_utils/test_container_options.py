"""The pure decisions of the container module: validation, drift, plans, diffs and result shapes."""

from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import container, container_options
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import Request, find_drift, image_key
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import LABEL_ENV, LABEL_MANAGED

IMAGE_ID = 'sha256:' + 'a' * 64
OTHER_ID = 'sha256:' + 'b' * 64


def request(**params):
    params.setdefault('name', 'my-env')
    return Request(params)


def inspected(status='running', image='busybox:latest', image_id=IMAGE_ID, env=None, labels=None, binds=None,
              mounts=None, nano_cpus=0, memory=0, restart='no', managed=True):
    all_labels = dict(labels or {})
    if managed:
        all_labels.update({LABEL_MANAGED: 'true', LABEL_ENV: 'my-env'})
    return {
        'Id': 'c' * 64, 'Name': '/kohakuriver-env-my-env', 'Image': image_id,
        'Created': '2026-11-28T15:00:00.123456789Z',
        'State': {'Status': status, 'Running': status in ('running', 'paused')},
        'Config': {'Image': image, 'Labels': all_labels,
                   'Env': ['PATH=/usr/bin:/bin'] + ['%s=%s' % item for item in (env or {}).items()]},
        'HostConfig': {'Binds': binds, 'Mounts': mounts, 'NanoCpus': nano_cpus, 'Memory': memory,
                       'RestartPolicy': {'Name': restart, 'MaximumRetryCount': 0}},
    }


@pytest.mark.parametrize('name', ['My-Env', '../x', '', 'a' * 65, None])
def test_a_bad_environment_name_fails_before_anything_else(name):
    with pytest.raises(Failure) as failure:
        Request(dict(name=name, image='busybox'))
    assert 'lowercase letters and digits' in failure.value.msg


def test_names_and_labels_follow_the_fixed_layout():
    wanted = request(image='busybox', labels={'team': 'ml'})
    assert wanted.name == 'kohakuriver-env-my-env'
    assert wanted.all_labels() == {'team': 'ml', LABEL_MANAGED: 'true', LABEL_ENV: 'my-env'}


def test_user_labels_cannot_forge_the_managed_label():
    with pytest.raises(Failure, match='must not set io.kohakuriver.docker.managed'):
        request(labels={LABEL_MANAGED: 'true'})


@pytest.mark.parametrize('value, expected', [('512m', 512 * 1024 ** 2), ('2g', 2 * 1024 ** 3), ('1048576', 1048576),
                                             ('0', 0), ('64mb', 64 * 1024 ** 2)])
def test_memory_is_read_like_docker_run(value, expected):
    assert request(memory=value).memory == expected


@pytest.mark.parametrize('value', ['lots', '12x', 'm'])
def test_memory_that_is_no_size_fails_with_the_format(value):
    with pytest.raises(Failure, match='like 512m'):
        request(memory=value)


@pytest.mark.parametrize('mount, fragment', [
    (dict(source='data', target='/data'), 'absolute path on the Docker host'),
    (dict(source='/data', target='data'), 'absolute path inside the container'),
    (dict(source='', target='/data'), 'needs a source and a target'),
])
def test_bad_mounts_fail_before_docker(mount, fragment):
    with pytest.raises(Failure, match=fragment):
        request(mounts=[mount])


def test_env_and_label_values_become_strings():
    wanted = request(env={'N': 1, 'FLAG': True, 'S': 'x'})
    assert wanted.env_vars == {'N': '1', 'FLAG': 'true', 'S': 'x'}


def test_the_container_is_kept_alive_by_a_shell_loop_that_replaces_the_entrypoint():
    create, host_config = request(image='x', cpus=1.5, memory='1g', restart_policy='always',
                                  mounts=[dict(source='/srv', target='/srv', read_only=True)]).create_arguments('x')
    assert create['entrypoint'][:2] == ['sh', '-c'] and 'trap' in create['entrypoint'][2]
    assert 'infinity' not in create['entrypoint'][2]
    assert 'command' not in create
    assert host_config == dict(init=True, nano_cpus=1500000000, mem_limit=1024 ** 3,
                               restart_policy={'Name': 'always'},
                               mounts=[dict(type='bind', source='/srv', target='/srv', read_only=True)])


@pytest.mark.parametrize('a, b', [('busybox', 'busybox:latest'), ('docker.io/library/busybox', 'busybox'),
                                  ('127.0.0.1:5000/x/y', '127.0.0.1:5000/x/y:latest'),
                                  ('index.docker.io/user/app:1', 'user/app:1')])
def test_one_image_written_two_ways_is_one_image(a, b):
    assert image_key(a) == image_key(b)


def test_digests_and_ports_are_not_mistaken_for_tags():
    assert image_key('127.0.0.1:5000/x') == '127.0.0.1:5000/x:latest'
    assert image_key('x@sha256:' + 'a' * 64) == 'x@sha256:' + 'a' * 64
    assert image_key('x:1') != image_key('x:2')


def test_a_request_that_names_only_the_environment_never_drifts():
    assert find_drift(request(), inspected(env={'A': '1'}, memory=10, restart='always'), None) == []


def test_the_same_request_as_created_has_no_drift():
    attrs = inspected(env={'A': '1'}, labels={'team': 'ml'}, nano_cpus=2000000000, memory=512 * 1024 ** 2,
                      restart='unless-stopped',
                      mounts=[{'Type': 'bind', 'Source': '/srv', 'Target': '/srv', 'ReadOnly': True}])
    wanted = request(image='busybox', env={'A': 1}, labels={'team': 'ml'}, cpus=2, memory='512m',
                     restart_policy='unless-stopped', mounts=[dict(source='/srv', target='/srv', read_only=True)])
    assert find_drift(wanted, attrs, IMAGE_ID) == []


def test_each_differing_option_is_reported_with_wanted_and_actual():
    attrs = inspected(env={'A': '1', 'B': '2'}, labels={'team': 'ml'}, memory=0, restart='no')
    wanted = request(env={'A': '1', 'B': '3', 'C': 'x'}, labels={'team': 'cv'}, memory='1g', cpus=1,
                     restart_policy='always', mounts=[])
    drift = dict((item['option'], item) for item in find_drift(wanted, attrs, None))
    assert sorted(drift) == ['cpus', 'env', 'labels', 'memory', 'restart_policy']
    assert drift['env']['wanted'] == {'B': '3', 'C': 'x'} and drift['env']['actual'] == {'B': '2', 'C': None}
    assert drift['labels'] == dict(option='labels', wanted={'team': 'cv'}, actual={'team': 'ml'})
    assert drift['memory'] == dict(option='memory', wanted=1024 ** 3, actual=0)
    assert drift['cpus'] == dict(option='cpus', wanted=1, actual=0)
    assert drift['restart_policy']['actual'] == 'no'


def test_mounts_compare_exactly_also_against_binds_made_by_hand():
    attrs = inspected(binds=['/srv/data:/data:ro,z'])
    assert find_drift(request(mounts=[dict(source='/srv/data', target='/data', read_only=True)]), attrs) == []
    drift = find_drift(request(mounts=[]), attrs)
    assert drift == [dict(option='mounts', wanted=[], actual=[
        dict(type='bind', source='/srv/data', target='/data', read_only=True)])]
    assert find_drift(request(mounts=[dict(source='/srv/data', target='/data')]), attrs)[0]['option'] == 'mounts'


def test_another_image_name_is_drift_unless_it_is_the_same_image():
    attrs = inspected(image='busybox:latest', image_id=IMAGE_ID)
    assert find_drift(request(image='alpine:3'), attrs, OTHER_ID) == [
        dict(option='image', wanted='alpine:3', actual='busybox:latest')]
    assert find_drift(request(image='alpine:3'), attrs, None)[0]['option'] == 'image'
    assert find_drift(request(image='my/busybox-alias'), attrs, IMAGE_ID) == []


def test_the_same_name_pointing_at_a_newer_image_is_image_id_drift():
    attrs = inspected(image='busybox', image_id=IMAGE_ID)
    assert find_drift(request(image='busybox:latest'), attrs, OTHER_ID) == [
        dict(option='image_id', wanted=OTHER_ID, actual=IMAGE_ID)]
    assert find_drift(request(image='busybox:latest'), attrs, None) == []


@pytest.mark.parametrize('state, status, drift, recreate, expected', [
    ('started', None, [], False, ['create', 'start']),
    ('present', None, [], False, ['create']),
    ('stopped', None, [], False, ['create']),
    ('absent', None, [], False, []),
    ('started', 'running', [], False, []),
    ('started', 'exited', [], False, ['start']),
    ('started', 'created', [], False, ['start']),
    ('started', 'paused', [], False, ['unpause']),
    ('stopped', 'running', [], False, ['stop']),
    ('stopped', 'exited', [], False, []),
    ('present', 'exited', [], False, []),
    ('present', 'running', [], False, []),
    ('absent', 'running', [], False, ['stop', 'remove']),
    ('absent', 'exited', [], False, ['remove']),
    ('started', 'running', ['drift'], False, []),
    ('started', 'exited', ['drift'], False, ['start']),
    ('started', 'exited', ['drift'], True, ['recreate', 'start']),
    ('present', 'running', ['drift'], True, ['recreate', 'start']),
    ('present', 'exited', ['drift'], True, ['recreate']),
    ('stopped', 'running', ['drift'], True, ['recreate']),
    ('absent', 'running', ['drift'], True, ['stop', 'remove']),
])
def test_plan(state, status, drift, recreate, expected):
    attrs = inspected(status=status) if status else None
    assert container.plan(request(state=state, recreate=recreate), attrs, drift) == expected


def test_drift_warning_says_the_container_is_kept_and_how_to_replace_it():
    text = container_options.drift_warning('kohakuriver-env-x', [dict(option='memory'), dict(option='env')], False)
    assert 'memory, env' in text and 'kept' in text and 'recreate: true' in text and 'lost' in text


def test_diff_of_a_create_shows_absent_then_the_request():
    wanted = request(image='busybox', memory='1g')
    diff = container._diff(wanted, None, ['create', 'start'])
    assert diff == dict(before=dict(state='absent'), after=dict(state='started', image='busybox', memory=1024 ** 3))


def test_diff_of_a_kept_drifting_container_changes_only_the_state():
    wanted = request(image='busybox', memory='1g')
    diff = container._diff(wanted, inspected(status='exited'), ['start'])
    assert diff['before'] == dict(state='stopped', image='busybox:latest', memory=0)
    assert diff['after'] == dict(state='started', image='busybox:latest', memory=0)


def test_diff_of_a_removal():
    diff = container._diff(request(state='absent'), inspected(), ['stop', 'remove'])
    assert diff == dict(before=dict(state='started', image='busybox:latest'), after=dict(state='absent'))


def test_describe_gives_one_shape_for_inspect_and_list_entries():
    from_inspect = container_options.describe(inspected(labels={'team': 'ml'}))
    from_list = container_options.describe({
        'Id': 'c' * 64, 'Names': ['/kohakuriver-env-my-env'], 'Image': 'busybox:latest', 'ImageID': IMAGE_ID,
        'Labels': {'team': 'ml', LABEL_MANAGED: 'true', LABEL_ENV: 'my-env'}, 'State': 'running',
        'Status': 'Up 2 hours', 'Created': 1795878000,
    })
    assert from_list.pop('status_text') == 'Up 2 hours'
    assert from_inspect == from_list == dict(
        id='c' * 64, name='kohakuriver-env-my-env', env='my-env', image='busybox:latest', image_id=IMAGE_ID,
        status='running', running=True, created='2026-11-28T15:00:00Z', managed=True,
        labels={'team': 'ml', LABEL_MANAGED: 'true', LABEL_ENV: 'my-env'})


def test_a_container_without_the_managed_label_is_foreign():
    assert container_options.describe(inspected(managed=False))['managed'] is False
    assert not container_options.is_managed({LABEL_MANAGED: 'false'})


@pytest.mark.parametrize('cpus', [float('nan'), float('inf'), float('-inf')])
def test_cpus_that_is_not_a_finite_number_fails_with_one_line(cpus):
    with pytest.raises(Failure, match='cpus must be a number of CPUs'):
        request(cpus=cpus)


@pytest.mark.parametrize('value', ['infm', '1e400g', '-5m', 'nan'])
def test_memory_that_is_infinite_or_negative_fails_with_the_format(value):
    with pytest.raises(Failure, match='like 512m'):
        request(memory=value)


@pytest.mark.parametrize('key', ['A=B', '', 'A\0B'])
def test_an_env_name_with_an_equals_sign_or_empty_is_refused(key):
    with pytest.raises(Failure, match='env name .* is not valid'):
        request(env={key: '1'})
