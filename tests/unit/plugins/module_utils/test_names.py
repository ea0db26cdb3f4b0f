from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import names
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure


@pytest.mark.parametrize('name', ['a', 'my-python-env', 'python-3.9-ml', 'cuda-11.8-tf', 'a__b', 'a---b', 'x' * 64])
def test_valid_environment_names_are_accepted(name):
    assert names.validate_env_name(name) == name


@pytest.mark.parametrize('name', ['', 'My-Env', '-env', 'env-', 'env..x', 'a___b', 'env/x', 'env x', '../etc', 'x' * 65, None])
def test_invalid_environment_names_fail_with_the_rule(name):
    with pytest.raises(Failure) as failure:
        names.validate_env_name(name)
    assert 'lowercase letters and digits' in failure.value.msg


def test_kohakuriver_layout_names():
    assert names.container_name('my-env') == 'kohakuriver-env-my-env'
    assert names.image_reference('my-env') == 'kohakuriver/my-env:base'
    assert names.tarball_name('my-env', 1700000000) == 'my-env-1700000000.tar'
    assert names.env_of_container('/kohakuriver-env-my-env') == 'my-env'
    assert names.env_of_container('other') is None


@pytest.mark.parametrize('file_name, env, expected', [
    ('env-1700000000.tar', None, ('env', 1700000000)),
    ('env-2-1700000000.tar', None, ('env-2', 1700000000)),
    ('env-2-1700000000.tar', 'env', None),
    ('env-1700000000.tar', 'env', ('env', 1700000000)),
    ('.env-1700000000.tar.partial', None, None),
    ('env-1700000000.tar.json', None, None),
    ('env-latest.tar', None, None),
    ('Env-1700000000.tar', None, None),
])
def test_tarball_names_parse_like_kohakuriver(file_name, env, expected):
    assert names.parse_tarball_name(file_name, env) == expected


@pytest.mark.parametrize('name', ['my-env\n', 'a\n'])
def test_a_name_with_a_trailing_newline_is_refused(name):
    with pytest.raises(Failure, match='lowercase letters and digits'):
        names.validate_env_name(name)


@pytest.mark.parametrize('file_name', ['env-1700000000.tar\n', 'env\n-1700000000.tar', 'env-\u0661\u0662.tar'])
def test_a_tarball_name_with_a_newline_or_other_digits_is_not_a_tarball_name(file_name):
    assert names.parse_tarball_name(file_name) is None


def test_each_container_kind_has_its_own_prefix():
    from ansible_collections.kohakuriver.docker.plugins.module_utils.names import (
        container_name, env_of_container, task_container_name, vps_container_name,
    )
    names = container_name('x'), vps_container_name('x'), task_container_name('x')
    assert names == ('kohakuriver-env-x', 'kohakuriver-vps-x', 'kohakuriver-task-x')
    assert [env_of_container(name) for name in names] == ['x', None, None]
