"""Random option values fed to the parsers and validators: each one gives a valid result or a one-line Failure,
never another exception (a traceback for the user)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.kohakuriver.docker.plugins.module_utils import names
from ansible_collections.kohakuriver.docker.plugins.module_utils.client import validate_api_version
from ansible_collections.kohakuriver.docker.plugins.module_utils.container_options import Request, _mount
from ansible_collections.kohakuriver.docker.plugins.module_utils.run_options import (
    capability_names, gpu_requests, ipc_mode_of, memory_bytes, parse_device, parse_ulimit, shm_bytes, user_of,
)
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.exec import command_argv, exec_environment, exec_user
from ansible_collections.kohakuriver.docker.plugins.module_utils.sshkeys import parse_authorized_keys, parse_public_key
from ansible_collections.kohakuriver.docker.plugins.module_utils.vps_options import VpsRequest, describe, validate_session

SETTINGS = settings(max_examples=300, database=None, suppress_health_check=[HealthCheck.too_slow])

# Text as YAML and Jinja hand it over: anything, with newlines, NULs, other scripts' digits and look-alikes weighted in.
TEXT = st.one_of(st.text(), st.text(alphabet='az09-_.=\n\0 /:\u0661\u00b2AZ', max_size=20),
                 st.sampled_from(['my-env', 'my-env\n', 'a', '', '-', '512m', 'infm', 'nan', '1e400g', '1.41', 'auto']))
NUMBER = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True))
SCALAR = st.one_of(st.none(), st.booleans(), NUMBER, TEXT)
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
                     max_leaves=6)


def clean(call, *args):
    """call(*args), or None when it failed cleanly with a one-line message."""
    try:
        return call(*args)
    except Failure as failure:
        assert isinstance(failure.msg, str) and failure.msg and '\n' not in failure.msg, failure.msg
        return None


@SETTINGS
@given(SCALAR)
def test_environment_names(value):
    accepted = clean(names.validate_env_name, value)
    if accepted is not None:
        assert accepted == value and names.parse_tarball_name(names.tarball_name(value, 1700000000)) == (value, 1700000000)
        assert '\n' not in accepted and len(accepted) <= names.ENV_NAME_MAX_LENGTH


@SETTINGS
@given(TEXT, st.one_of(st.none(), TEXT))
def test_tarball_names(file_name, env):
    found = names.parse_tarball_name(file_name, env)
    if found is not None:
        assert names.validate_env_name(found[0]) and found[1] >= 0
        assert names.tarball_name(*found) == file_name and (env is None or found[0] == env)


@SETTINGS
@given(SCALAR)
def test_memory_sizes(value):
    size = clean(memory_bytes, value)
    assert size is None or (isinstance(size, int) and size >= 0)


@SETTINGS
@given(st.dictionaries(st.sampled_from(['type', 'source', 'target', 'read_only']), SCALAR))
def test_mounts(spec):
    mount = clean(_mount, spec)
    if mount is not None:
        assert mount['target'].startswith('/') and mount['source']


@SETTINGS
@given(st.fixed_dictionaries({}, optional={
    'name': SCALAR, 'image': st.one_of(st.none(), TEXT), 'state': st.sampled_from(['started', 'present', 'stopped', 'absent']),
    'env': st.one_of(st.none(), st.dictionaries(TEXT, VALUE, max_size=4)),
    'labels': st.one_of(st.none(), st.dictionaries(TEXT, VALUE, max_size=4)),
    'mounts': st.one_of(st.none(), st.lists(st.fixed_dictionaries({'source': TEXT, 'target': TEXT}, optional={
        'type': st.sampled_from(['bind', 'volume']), 'read_only': st.booleans()}), max_size=3)),
    'cpus': st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    'memory': st.one_of(st.none(), TEXT), 'recreate': st.booleans(), 'adopt': st.booleans(),
}))
def test_container_requests(params):
    # The types are the ones the container module's argument spec guarantees; the values are anything.
    request = clean(Request, params)
    if request is not None:
        create, host_config = request.create_arguments(request.image or 'busybox')
        assert all('=' not in key and key for key in create.get('environment', {}))
        assert request.cpus is None or math.isfinite(request.cpus) and request.cpus >= 0
        assert isinstance(host_config.get('nano_cpus', 0), int)


@SETTINGS
@given(st.one_of(st.none(), st.lists(TEXT, max_size=4)), st.one_of(st.none(), TEXT))
def test_exec_argv(argv, command):
    found = clean(command_argv, dict(argv=argv, command=command))
    if found is not None:
        assert found and all(isinstance(arg, str) and '\0' not in arg for arg in found)


@SETTINGS
@given(st.one_of(st.none(), st.dictionaries(TEXT, SCALAR, max_size=5)), st.one_of(st.none(), TEXT, st.integers()))
def test_exec_env_and_user(env, user):
    pairs = clean(exec_environment, env)
    if pairs is not None:
        assert all(key and '=' not in key and isinstance(value, str) for key, value in pairs.items())
    found = clean(exec_user, user)
    assert found is None or isinstance(found, str)


@SETTINGS
@given(SCALAR)
def test_api_versions(value):
    found = clean(validate_api_version, value)
    assert found is None or found == 'auto' or found.replace('.', '').isdigit()


@SETTINGS
@given(SCALAR)
def test_session_names(value):
    found = clean(validate_session, value)
    assert found is None or (found == value and '\n' not in found and 1 <= len(found) <= 63)


@SETTINGS
@given(st.one_of(TEXT, st.builds(lambda key, tail: key + tail, st.sampled_from([
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', 'restrict,command="x" ssh-rsa AAAA']),
    TEXT)), st.integers(min_value=0, max_value=5))
def test_public_keys(line, index):
    key = clean(parse_public_key, line, index)
    if key is not None:
        assert parse_public_key(key.line()).line() == key.line() and key.fingerprint.startswith('SHA256:')
    clean(parse_authorized_keys, [line])


@SETTINGS
@given(st.fixed_dictionaries({'name': SCALAR}, optional={
    'env': st.one_of(st.none(), TEXT), 'state': st.sampled_from(['started', 'stopped', 'absent']),
    'port': st.one_of(st.none(), st.integers()), 'bind_address': st.one_of(st.none(), TEXT),
    'ssh_host': st.one_of(st.none(), TEXT), 'authorized_keys': st.one_of(st.none(), st.lists(TEXT, max_size=2)),
    'generate_key': st.booleans(), 'snapshot_keep': st.one_of(st.none(), st.integers()),
}))
def test_vps_requests(params):
    # Only the options vps_options.py checks itself; the run options (mounts, limits) belong to run_options.py's RunOptions.
    request = clean(VpsRequest, dict(dict(shared_dir='/mnt/cluster-share', state_dir='/var/lib/kohakuriver-docker',
                                          sync=True), **params))
    if request is not None:
        assert '\n' not in request.session and (request.ssh_host is None or '\n' not in request.ssh_host)


@SETTINGS
@given(st.dictionaries(st.sampled_from(['io.kohakuriver.docker.vps', 'io.kohakuriver.docker.vps.port',
                                        'io.kohakuriver.docker.vps.bind_address', 'io.kohakuriver.docker.vps.host_key',
                                        'io.kohakuriver.docker.env']), TEXT),
       st.lists(st.fixed_dictionaries({'PrivatePort': st.sampled_from([22, 80]), 'PublicPort': st.integers(0, 65535)}),
                max_size=2))
def test_a_listed_session_is_described_whatever_its_labels(labels, ports):
    found = describe({'Id': 'c0ffee', 'Names': ['/kohakuriver-vps-x'], 'State': 'running', 'Labels': labels, 'Ports': ports},
                     ssh_host='node1')
    assert found['port'] is None or isinstance(found['port'], int)
    if 'problem' in found:
        assert found['host_key'] is None and '\n' not in found['problem']


@SETTINGS
@given(st.lists(TEXT, max_size=3), st.one_of(st.none(), st.lists(TEXT, max_size=3)))
def test_random_gpu_choices(gpus, available):
    requests = clean(gpu_requests, gpus, available)
    if requests:
        assert requests[0]['count'] == -1 or requests[0]['count'] >= 0


@SETTINGS
@given(TEXT)
def test_random_ulimits_devices_modes_and_users(value):
    for parse in (parse_ulimit, parse_device, ipc_mode_of, user_of, shm_bytes, lambda text: capability_names([text])):
        clean(parse, value)
