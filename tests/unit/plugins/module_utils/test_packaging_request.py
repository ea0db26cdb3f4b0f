"""What a packaging run takes from its parameters: file modes, keep, and the options of state=absent refused."""

from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import packaging_request
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure

PARAMS = dict(name='my-env', state='present', tarball_dir='/share/tarballs/', keep=1, force=False, mode='0644',
              pause=False, stop_timeout=10, image_timeout=1800, adopt=False, purge=False, tarball=None,
              docker_host='unix:///var/run/docker.sock')


@pytest.mark.parametrize('given, expected', [('0644', 0o644), ('644', 0o644), ('0o640', 0o640), (0o600, 0o600),
                                             ('0664', 0o664)])
def test_modes_are_octal_and_owner_readable(given, expected):
    assert packaging_request.parse_mode(given) == expected


@pytest.mark.parametrize('given, message', [('0666', 'world-writable'), (0o777, 'world-writable'),
                                            ('4644', 'special bits'), ('0244', 'unreadable by their owner'),
                                            ('rw-r--r--', 'not an octal file mode'), ('0988', 'not an octal')])
def test_bad_modes_are_refused_with_the_fix(given, message):
    with pytest.raises(Failure, match=message):
        packaging_request.parse_mode(given)


def test_a_request_holds_the_validated_parameters():
    request = packaging_request.PackagingRequest(dict(PARAMS, mode='0640', keep=3, adopt=None, image_timeout=None))
    assert (request.env, request.folder, request.keep, request.mode) == ('my-env', '/share/tarballs', 3, 0o640)
    assert request.adopt is False and request.image_timeout == packaging_request.IMAGE_TIMEOUT
    assert request.docker_host == 'unix:///var/run/docker.sock'
    assert packaging_request.PackagingRequest(dict(PARAMS, docker_host=None)).docker_host == 'the Docker host'
    assert (request.layout, request.max_layers) == ('chain', packaging_request.DEFAULT_MAX_LAYERS)
    flat = packaging_request.PackagingRequest(dict(PARAMS, layout='flat', max_layers=2))
    assert (flat.layout, flat.max_layers) == ('flat', 2)


@pytest.mark.parametrize('changes, message', [
    (dict(purge=True), '^purge goes with state=absent.$'),
    (dict(tarball='my-env-1700000000.tar'), '^tarball names a tarball to delete; use it with state=absent.$'),
    (dict(keep=0), '^keep is 0; keep at least 1 tarball'),
    (dict(mode='0666'), 'world-writable'),
    (dict(name='My Env'), 'name'),
    (dict(tarball_dir='relative'), 'not an absolute path'),
    (dict(layout='squashed'), "^layout 'squashed' is not one of chain, flat.$"),
    (dict(max_layers=1), '^max_layers is 1; give a number of layers from 2 to 120'),
    (dict(max_layers=126), '^max_layers is 126; give a number of layers from 2 to 120'),
    # The state=absent options are refused first, whatever else is wrong.
    (dict(purge=True, keep=0, mode='0666'), '^purge goes with state=absent.$'),
])
def test_a_request_refuses_what_cannot_be_packaged_in_one_line(changes, message):
    with pytest.raises(Failure, match=message) as raised:
        packaging_request.PackagingRequest(dict(PARAMS, **changes))
    assert '\n' not in raised.value.msg
