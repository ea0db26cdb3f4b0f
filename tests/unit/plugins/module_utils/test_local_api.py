"""local_api's parts that need no daemon: the load answer's JSON stream, a socket nobody listens on, and the error
helpers, which treat the SDK's errors as their own (tests/integration/test_local_api.py talks to real daemons)."""

from __future__ import annotations

import socket
import types

import pytest
from docker.errors import APIError

from ansible_collections.kohakuriver.docker.plugins.module_utils import local_api


def test_the_load_answer_is_read_as_a_stream_of_json_values():
    assert local_api.json_messages('{"stream":"a"}\r\n{"stream":"b"}{"error":"c"}\n') == \
        [{'stream': 'a'}, {'stream': 'b'}, {'error': 'c'}]
    assert local_api.json_messages(' \n') == []
    with pytest.raises(ValueError):
        local_api.json_messages('{"stream": "cut')


def test_a_socket_nobody_listens_on_is_a_transport_error(tmp_path):
    path = str(tmp_path / 'docker.sock')
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as bound:
        bound.bind(path)  # bound, never listening: connecting is refused
        with pytest.raises(local_api.transport_errors()) as failed:
            local_api.LocalClient(path, timeout=5).api.info()
    assert isinstance(failed.value, local_api.LocalTransportError) and isinstance(failed.value, OSError)
    assert local_api.explain(failed.value).startswith('GET /info: ')


def test_the_sdk_errors_count_as_refusals_and_transport_errors():
    refusal = APIError('409 Conflict', response=types.SimpleNamespace(status_code=409, url='http://docker/', reason='x'),
                       explanation='conflict: unable to delete')
    assert isinstance(refusal, local_api.refused_errors()) and isinstance(refusal, local_api.transport_errors())
    assert local_api.explain(refusal) == 'conflict: unable to delete'
    own = local_api.LocalApiError(404, 'No such image: x')
    assert isinstance(own, local_api.refused_errors()) and local_api.explain(own) == 'No such image: x'


def test_inspect_or_none_is_none_for_404_only():
    class Api(object):
        def __init__(self, status):
            self.status = status

        def inspect_image(self, reference):
            raise local_api.LocalApiError(self.status, 'no %s' % reference)

    assert local_api.inspect_or_none(types.SimpleNamespace(api=Api(404)), 'x') is None
    with pytest.raises(local_api.LocalApiError):
        local_api.inspect_or_none(types.SimpleNamespace(api=Api(500)), 'x')
