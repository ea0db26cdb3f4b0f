"""kohakuriver.docker.container_copy against the real engines of the test bed."""

from __future__ import annotations

import contextlib
import io
import tarfile

import pytest

from support.ansible_runs import run_module, warnings_of
from container_support import client, engine_fixture, exec_output, one_line, pretty, removed_afterwards
from noshell_image import noshell_container

from ansible_collections.kohakuriver.docker.plugins.module_utils.names import container_name

pytestmark = pytest.mark.integration


@pytest.fixture
def host(docker_hosts):
    return engine_fixture(docker_hosts, 'host')


@pytest.fixture
def running(host, unique_env, host_images):
    """A running busybox environment container on the Host engine: (engine, env)."""
    with removed_afterwards(host['docker_host'], unique_env):
        created = run_module('container', dict(docker_host=host['docker_host'], name=unique_env,
                                               image=host_images['busybox'], pull='never'))
        assert created['container']['status'] == 'running', pretty(created)
        yield host, unique_env


def copy(engine, env, check=False, diff=False, **args):
    args.update(docker_host=engine['docker_host'], name=env)
    return run_module('container_copy', args, check=check, diff=diff)


def file_in(docker_host, env, path):
    """(content, mode, uid, gid) of a file in the container, read with the plain Docker SDK's archive call."""
    with contextlib.closing(client(docker_host)) as api:
        stream, _stat = api.api.get_archive(container_name(env), path)
        with tarfile.open(fileobj=io.BytesIO(b''.join(stream))) as archive:
            member = archive.next()
            return archive.extractfile(member).read().decode(), member.mode & 0o7777, member.uid, member.gid


def test_writes_a_file_then_reports_no_change(running):
    engine, env = running
    first = copy(engine, env, dest='/opt/new/deep/app.conf', content='threads = 4\n', mode='0640')
    assert first['changed'] and first['mode'] == '0640' and first['uid'] == 0, pretty(first)
    assert file_in(engine['docker_host'], env, '/opt/new/deep/app.conf') == ('threads = 4\n', 0o640, 0, 0)
    assert exec_output(engine['docker_host'], env, ['stat', '-c', '%a %u', '/opt/new', '/opt/new/deep']) == '755 0\n755 0\n'
    again = copy(engine, env, dest='/opt/new/deep/app.conf', content='threads = 4\n', mode='0640')
    assert not again['changed'] and 'diff' not in again, pretty(again)


def test_check_mode_and_diff_write_nothing_and_show_before_and_after(running):
    engine, env = running
    would = copy(engine, env, check=True, diff=True, dest='/etc/app.conf', content='a = 1\n')
    assert would['changed'] and would['diff']['before'] == '' and would['diff']['after'] == 'a = 1\n', pretty(would)
    assert exec_output(engine['docker_host'], env, ['sh', '-c', 'test -e /etc/app.conf || echo absent']) == 'absent\n'
    copy(engine, env, dest='/etc/app.conf', content='a = 1\n')
    changed = copy(engine, env, check=True, diff=True, dest='/etc/app.conf', content='a = 2\n')
    assert changed['changed'] and changed['diff']['before'] == 'a = 1\n' and changed['diff']['after'] == 'a = 2\n'
    assert file_in(engine['docker_host'], env, '/etc/app.conf')[0] == 'a = 1\n'
    same = copy(engine, env, check=True, diff=True, dest='/etc/app.conf', content='a = 1\n')
    assert not same['changed'] and 'diff' not in same, pretty(same)


def test_a_mode_or_owner_change_alone_rewrites_the_file_and_names_resolve_in_the_container(running):
    engine, env = running
    copy(engine, env, dest='/etc/token', content='secret\n', mode='0644')
    moded = copy(engine, env, diff=True, dest='/etc/token', content='secret\n', mode='0600')
    assert moded['changed'] and '0644' in moded['diff']['before_header'] and '0600' in moded['diff']['after_header']
    assert file_in(engine['docker_host'], env, '/etc/token') == ('secret\n', 0o600, 0, 0)
    owned = copy(engine, env, dest='/etc/token', content='secret\n', mode='0600', owner='nobody', group='nogroup')
    assert owned['changed'], pretty(owned)
    _content, _mode, uid, gid = file_in(engine['docker_host'], env, '/etc/token')
    assert exec_output(engine['docker_host'], env, ['sh', '-c', 'id -u nobody; stat -c %g /etc/token']) == '%d\n%d\n' % (uid, gid)
    kept = copy(engine, env, dest='/etc/token', content='secret\n')
    assert not kept['changed'] and (kept['uid'], kept['gid'], kept['mode']) == (uid, gid, '0600'), pretty(kept)
    unknown = copy(engine, env, dest='/etc/token', content='secret\n', owner='nosuchuser')
    assert unknown.get('failed') and one_line(unknown['msg']) and "'nosuchuser'" in unknown['msg'], pretty(unknown)


def test_a_large_file_is_compared_without_diff_content(running):
    engine, env = running
    content = 'x' * (300 * 1024) + '\n'
    copy(engine, env, dest='/tmp/big.txt', content=content)
    again = copy(engine, env, diff=True, dest='/tmp/big.txt', content=content)
    assert not again['changed'], pretty(dict(again, diff=None))
    changed = copy(engine, env, diff=True, check=True, dest='/tmp/big.txt', content=content[:-1] + 'y')
    assert changed['changed'] and 'before' not in changed['diff'] and changed['diff']['dst_larger']


def test_a_container_with_no_shell_gets_its_file(host, unique_env):
    with removed_afterwards(host['docker_host'], unique_env):
        with noshell_container(host['docker_host'], container_name(unique_env), 'krtest/noshell-%s:latest' % unique_env):
            written = copy(host, unique_env, dest='/dir/new/file.txt', content='no shell\n', mode='0600')
            assert written['changed'], pretty(written)
            assert file_in(host['docker_host'], unique_env, '/dir/new/file.txt') == ('no shell\n', 0o600, 0, 0)
            through = copy(host, unique_env, dest='/link', content='made\n')
            assert not through['changed'] and through['path'] == '/made', pretty(through)
            assert not copy(host, unique_env, dest='/dir/new/file.txt', content='no shell\n')['changed']
            folder = copy(host, unique_env, dest='/dir', content='x')
            assert folder.get('failed') and one_line(folder['msg']) and 'folder' in folder['msg'], pretty(folder)


def test_a_missing_container_fails_in_one_line_and_warns_in_check_mode(host, unique_env):
    missing = copy(host, unique_env, dest='/etc/x', content='x')
    assert missing.get('failed') and one_line(missing['msg']), pretty(missing)
    assert missing['msg'] == '%s does not exist; create it first with kohakuriver.docker.container.' % container_name(unique_env)
    would = copy(host, unique_env, check=True, dest='/etc/x', content='x')
    assert would['changed'] and not would.get('failed') and warnings_of(would), pretty(would)
    relative = copy(host, unique_env, dest='etc/x', content='x')
    assert relative.get('failed') and one_line(relative['msg']) and 'absolute' in relative['msg'], pretty(relative)
