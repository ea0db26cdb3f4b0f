"""kohakuriver.docker.container_exec against the real engines of the test bed."""

from __future__ import annotations

import pytest

from support.ansible_runs import run_module, warnings_of
from container_support import (
    ENGINES, UNREACHABLE, engine_fixture, exec_output, one_line, pretty, removed_afterwards, ssh_environment,
)
from noshell_image import noshell_container

from ansible_collections.kohakuriver.docker.plugins.module_utils.exec import OUTPUT_LIMIT
from ansible_collections.kohakuriver.docker.plugins.module_utils.names import container_name

pytestmark = pytest.mark.integration


@pytest.fixture(scope='module')
def images(host_images):
    return host_images


def _running(engine, unique_env, images):
    with removed_afterwards(engine['docker_host'], unique_env):
        created = run_module('container', dict(docker_host=engine['docker_host'], name=unique_env,
                                               image=images['busybox'], pull='never'))
        assert created['container']['status'] == 'running', pretty(created)
        yield engine, unique_env


@pytest.fixture(params=ENGINES)
def running(request, docker_hosts, unique_env, images):
    """A running busybox environment container on each engine: (engine, env)."""
    yield from _running(engine_fixture(docker_hosts, request.param), unique_env, images)


@pytest.fixture
def host_running(docker_hosts, unique_env, images):
    """The same on the Host engine only, for behaviour that does not depend on the engine."""
    yield from _running(engine_fixture(docker_hosts, 'host'), unique_env, images)


def run(engine, target, check=False, **args):
    """container_exec in environment target on engine; args are the module's options."""
    args.update(docker_host=engine['docker_host'], name=target)
    return run_module('container_exec', args, check=check)


def test_argv_and_command_return_stdout_and_stderr_separately(running):
    engine, env = running
    result = run(engine, env, argv=['sh', '-c', 'echo out; echo err >&2; echo out2'])
    assert result['changed'] and result['rc'] == 0, pretty(result)
    assert result['stdout'] == 'out\nout2' and result['stderr'] == 'err'
    assert result['stdout_lines'] == ['out', 'out2'] and result['stderr_lines'] == ['err']
    assert result['container'] == 'kohakuriver-env-' + env
    piped = run(engine, env, command='echo "a b" | wc -w && echo $((2 + 3))')
    assert piped['cmd'] == ['sh', '-c', 'echo "a b" | wc -w && echo $((2 + 3))']
    assert [line.strip() for line in piped['stdout_lines']] == ['2', '5']


def test_chdir_env_user_and_stdin(running):
    engine, env = running
    result = run(engine, env, command='pwd; echo "$GREETING $N"; id -u; cat', chdir='/tmp',
                 env={'GREETING': 'hello world', 'N': 3}, user='65534', stdin='from stdin')
    assert result['stdout_lines'] == ['/tmp', 'hello world 3', '65534', 'from stdin'], pretty(result)
    raw = run(engine, env, argv=['cat'], stdin='no newline', stdin_add_newline=False, strip_empty_ends=False)
    assert raw['stdout'] == 'no newline'
    kept = run(engine, env, argv=['echo', 'x'], strip_empty_ends=False)
    assert kept['stdout'] == 'x\n'


def test_a_large_stdin_and_output_stream_both_ways_without_deadlock(running):
    engine, env = running
    payload = ''.join('line %06d %s\n' % (n, 'x' * 40) for n in range(40000))
    result = run(engine, env, argv=['sh', '-c', 'cat; cat /proc/1/cmdline >&2'], stdin=payload,
                 stdin_add_newline=False, strip_empty_ends=False, timeout=120)
    assert result['rc'] == 0 and result['stdout_bytes'] == len(payload) > 2 * OUTPUT_LIMIT, pretty(result)
    assert result['stdout'] == payload[-OUTPUT_LIMIT:] and 'init' in result['stderr']


def test_output_beyond_the_cap_keeps_its_end_and_says_how_much_there_was(running):
    engine, env = running
    result = run(engine, env, command='i=0; while [ $i -lt 200000 ]; do echo "line $i"; i=$((i + 1)); done; '
                                      'echo done >&2; exit 3', timeout=300)
    assert result.get('failed') and result['rc'] == 3 and result['stderr'] == 'done', pretty(result)
    total = sum(len('line %d\n' % n) for n in range(200000))
    assert result['stdout_bytes'] == total > OUTPUT_LIMIT and result['stdout_truncated']
    assert result['stdout'].endswith('\nline 199998\nline 199999') and len(result['stdout']) == OUTPUT_LIMIT - 1
    assert result['stdout_lines'][-1] == 'line 199999' and not result['stderr_truncated'] and result['stderr_bytes'] == 5
    assert result['msg'].endswith('with rc 3: done')
    assert any('only the last %d bytes' % OUTPUT_LIMIT in warning for warning in warnings_of(result))
    small = run(engine, env, argv=['echo', 'hi'])
    assert (small['stdout'], small['stdout_bytes'], small['stdout_truncated']) == ('hi', 3, False)
    assert not warnings_of(small)


def test_a_failing_command_fails_with_its_output_and_keeps_rc_stdout_stderr(running):
    engine, env = running
    result = run(engine, env, command='echo partial; echo "E: Unable to locate package nope" >&2; exit 100')
    assert result.get('failed') and result['rc'] == 100, pretty(result)
    assert result['stdout'] == 'partial' and result['stderr'] == 'E: Unable to locate package nope'
    assert result['msg'] == ('Command failed in kohakuriver-env-%s with rc 100: E: Unable to locate package nope' % env)
    missing = run(engine, env, argv=['no-such-program'])
    assert missing.get('failed') and one_line(missing['msg']), pretty(missing)
    assert missing['rc'] != 0 or 'no-such-program' in missing['msg']


def test_creates_and_removes_make_it_idempotent(running):
    engine, env = running
    first = run(engine, env, command='echo installed > /opt-marker', creates='/opt-marker')
    assert first['changed'] and first['rc'] == 0, pretty(first)
    second = run(engine, env, command='echo again >> /opt-marker', creates='/opt-marker')
    assert not second['changed'] and 'exists' in second['msg'] and second['rc'] == 0
    assert exec_output(engine['docker_host'], env, ['cat', '/opt-marker']) == 'installed\n'
    skipped = run(engine, env, command='rm /no-such-file', removes='/no-such-file')
    assert not skipped['changed'] and 'does not exist' in skipped['msg']
    removed = run(engine, env, command='rm /opt-marker', removes='/opt-marker')
    assert removed['changed'] and exec_output(engine['docker_host'], env, ['ls', '/opt-marker']).startswith('ls:')


def test_check_mode_does_not_run_the_command(host_running):
    engine, env = host_running
    would = run(engine, env, command='touch /checked', check=True)
    assert would['changed'] and 'rc' not in would, pretty(would)
    assert exec_output(engine['docker_host'], env, ['ls', '/checked']).startswith('ls:')
    exec_output(engine['docker_host'], env, ['touch', '/exists'])
    assert not run(engine, env, command='touch /x', creates='/exists', check=True)['changed']
    assert run(engine, env, command='rm /exists', removes='/exists', check=True)['changed']
    assert exec_output(engine['docker_host'], env, ['ls', '/exists']).strip() == '/exists'


def test_a_stopped_or_missing_container_fails_saying_what_to_do(host_running):
    engine, env = host_running
    run_module('container', dict(docker_host=engine['docker_host'], name=env, state='stopped'))
    stopped = run(engine, env, argv=['true'])
    assert stopped.get('failed') and one_line(stopped['msg']), pretty(stopped)
    assert stopped['msg'] == ('kohakuriver-env-%s is exited; start it first (kohakuriver.docker.container with '
                              'state: started).' % env)
    in_check_mode = run(engine, env, argv=['true'], check=True)
    assert not in_check_mode.get('failed') and in_check_mode['changed']
    assert any('start it first' in warning for warning in warnings_of(in_check_mode))
    missing = run(engine, env + '-missing', argv=['true'])
    assert missing.get('failed') and 'does not exist; create it first' in missing['msg']


def test_argv_and_command_are_exclusive_and_one_is_required(host_running):
    engine, env = host_running
    both = run(engine, env, argv=['true'], command='true')
    assert both.get('failed') and 'mutually exclusive' in both['msg']
    neither = run(engine, env)
    assert neither.get('failed') and 'argv' in neither['msg'] and 'command' in neither['msg']
    empty = run(engine, env, argv=[])
    assert empty.get('failed') and one_line(empty['msg']), pretty(empty)


def test_unreachable_daemon_fails_with_one_line(unique_env):
    result = run_module('container_exec', dict(name=unique_env, argv=['true'], docker_host=UNREACHABLE, timeout=5))
    assert result.get('failed') and result['msg'].startswith('Cannot reach the Docker daemon at %s: ' % UNREACHABLE)
    assert one_line(result['msg'])


def test_exec_with_stdin_over_ssh_through_paramiko(docker_hosts, testbed, unique_env, images):
    engine = engine_fixture(docker_hosts, 'host')
    with removed_afterwards(engine['docker_host'], unique_env):
        over_ssh = dict(docker_host=testbed['ssh']['docker_host'], name=unique_env)
        created = run_module('container', dict(over_ssh, image=images['python']), env=ssh_environment(testbed))
        assert created['changed'], pretty(created)
        result = run_module('container_exec', dict(over_ssh, argv=['python3', '-c', 'import sys; print(sys.stdin.read()[::-1])'],
                                                   stdin='hello over ssh', stdin_add_newline=False),
                            env=ssh_environment(testbed))
        assert result['rc'] == 0 and result['stdout'] == 'hss revo olleh', pretty(result)
        failed = run_module('container_exec', dict(over_ssh, command='echo to-stderr >&2; exit 3'),
                            env=ssh_environment(testbed))
        assert failed.get('failed') and failed['rc'] == 3 and failed['stderr'] == 'to-stderr'


def test_creates_and_removes_need_no_program_in_the_container_and_follow_links(docker_hosts, testbed, unique_env):
    engine = engine_fixture(docker_hosts, 'host')
    with noshell_container(engine['docker_host'], container_name(unique_env), 'krtest/noshell-%s:latest' % unique_env):
        skipped = {}
        for path in ('/made', 'made', '/link', '/dir/up', 'up', '/dir'):
            skipped[path] = run(engine, unique_env, argv=['/pause', 'x'], creates=path,
                                chdir='/dir' if path == 'up' else None)
        assert all(not result['changed'] and 'exists' in result['msg'] for result in skipped.values()), pretty(skipped)
        for path in ('/dangling', '/nowhere', '/dir/nothing'):
            missing = run(engine, unique_env, argv=['/pause', 'x'], removes=path)
            assert not missing['changed'] and 'does not exist' in missing['msg'], pretty(missing)
            would = run(engine, unique_env, argv=['/pause', 'x'], creates=path, check=True)
            assert would['changed'] and would['msg'] == 'Would run the command.', pretty(would)
        ran = run(engine, unique_env, argv=['/pause', 'x'], removes='/link')
        assert ran['changed'] and ran['rc'] == 0, pretty(ran)
        unknown = run_module('container_exec', dict(docker_host=testbed['ssh']['docker_host'], name=unique_env,
                                                    argv=['/pause', 'x'], user='nosuchuser'),
                             env=ssh_environment(testbed))
        assert unknown.get('failed') and unknown['rc'] == 126, pretty(unknown)
        assert 'unable to find user nosuchuser' in unknown['msg'] and one_line(unknown['msg'])


def test_an_env_name_with_an_equals_sign_is_refused_and_nothing_runs(running):
    engine, env = running
    refused = run(engine, env, command='touch /ran', env={'A=B': 1})
    assert refused.get('failed') and refused['msg'].startswith("env name 'A=B' is not valid"), pretty(refused)
    assert exec_output(engine['docker_host'], env, ['ls', '/ran']).startswith('ls:')
