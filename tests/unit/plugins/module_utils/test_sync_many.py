"""image_sync with several environments: which ones (names, all_tarballs), pins of those only, and each in turn."""

from __future__ import annotations

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure
from ansible_collections.kohakuriver.docker.plugins.module_utils.sync_many import asks_for_many, checked_pins, environments, sync_each


def folder_with(tmp_path, *file_names):
    for file_name in file_names:
        (tmp_path / file_name).write_bytes(b'x')
    return str(tmp_path)


def test_names_come_first_each_once_then_every_other_environment_with_a_tarball_by_name(tmp_path):
    folder = folder_with(tmp_path, 'zeta-1700000000.tar', 'alpha-1700000000.tar', 'alpha-1700000100.tar',
                         'beta-1700000000.tar', 'beta-1700000000.tar.json', 'notes.txt', 'gamma.tar')
    assert environments(['beta', 'omega', 'beta'], True, folder) == ['beta', 'omega', 'alpha', 'zeta']
    assert environments(['beta', 'omega'], False, folder) == ['beta', 'omega']
    assert environments([], True, folder) == ['alpha', 'beta', 'zeta']


def test_a_folder_without_tarballs_gives_no_environment(tmp_path):
    assert environments(None, True, folder_with(tmp_path)) == []


def test_a_missing_folder_is_an_error_unless_a_registry_holds_the_images(tmp_path):
    missing = str(tmp_path / 'absent')
    with pytest.raises(Failure, match='Tarball folder %s does not exist' % missing):
        environments(['a'], True, missing)
    assert environments(['a'], True, missing, folder_may_be_missing=True) == ['a']
    assert environments(['a'], False, missing) == ['a'], 'without all_tarballs the folder is not listed here'


def test_a_bad_name_and_a_relative_folder_are_refused_with_what_to_fix(tmp_path):
    with pytest.raises(Failure, match=r"names entry 'Bad Name' is not a valid environment name"):
        environments(['ok', 'Bad Name'], False, str(tmp_path))
    with pytest.raises(Failure, match='tarball_dir .relative. is not an absolute path'):
        environments([], True, 'relative')


def test_pins_of_environments_not_synced_are_refused_naming_them_and_what_is_synced():
    assert checked_pins({'a': 'a-1700000000.tar'}, ['a', 'b']) == {'a': 'a-1700000000.tar'}
    assert checked_pins(None, ['a']) == {}
    with pytest.raises(Failure) as refused:
        checked_pins({'x': '1', 'a': '2', 'w': '3'}, ['a', 'b'])
    assert refused.value.msg.startswith('pins name w, x, which are not synced in this run (synced: a, b)')
    with pytest.raises(Failure, match=r'pins name x, which is not synced in this run \(synced: none\)'):
        checked_pins({'x': '1'}, [])


def test_each_environment_is_synced_with_its_pin_and_warnings_and_diffs_are_gathered():
    calls = []

    def sync_one(env, pin):
        calls.append((env, pin))
        return dict(env=env, changed=env == 'b', warnings=['w of %s' % env], diff=dict(before=env, after=env))

    outcome = sync_each(['a', 'b'], {'b': 'b-1700000000.tar'}, sync_one)
    assert calls == [('a', None), ('b', 'b-1700000000.tar')]
    assert outcome['changed'] is True
    assert outcome['results'] == [dict(env='a', changed=False), dict(env='b', changed=True)]
    assert outcome['warnings'] == ['a: w of a', 'b: w of b']
    assert outcome['diff'] == [dict(before='a', after='a'), dict(before='b', after='b')]
    assert sync_each([], {}, sync_one) == dict(changed=False, results=[], warnings=[], diff=[])


def test_a_failing_environment_does_not_stop_the_others_and_the_run_fails_naming_each():
    synced = []

    def sync_one(env, pin):
        if env == 'a':
            raise Failure('pin 1 is not a kept tarball of environment a', action='none')
        if env == 'c':
            raise OSError('daemon gone')
        synced.append(env)
        return dict(env=env, changed=True)

    with pytest.raises(Failure) as failed:
        sync_each(['a', 'b', 'c'], {}, sync_one, explain_error=lambda exc: 'Docker error: %s' % exc)
    assert synced == ['b']
    assert failed.value.msg == ('2 of 3 environments failed to sync; a: pin 1 is not a kept tarball of environment a '
                                'c: Docker error: daemon gone')
    results = failed.value.result['results']
    assert results[0] == dict(env='a', failed=True, msg='pin 1 is not a kept tarball of environment a', action='none')
    assert results[1] == dict(env='b', changed=True) and failed.value.result['changed'] is True
    assert results[2] == dict(env='c', failed=True, msg='Docker error: daemon gone')


def test_an_error_nobody_explains_is_a_bug_and_raised():
    def sync_one(env, pin):
        raise KeyError('bug')

    with pytest.raises(KeyError):
        sync_each(['a'], {}, sync_one, explain_error=lambda exc: None)


@pytest.mark.parametrize('params, many', [
    (dict(name='a', names=None, all_tarballs=False), False),
    (dict(name=None, names=['a'], all_tarballs=False), True),
    (dict(name=None, names=[], all_tarballs=False), True),
    (dict(name=None, names=None, all_tarballs=True), True),
])
def test_one_environment_or_several(params, many):
    assert asks_for_many(params) is many


@pytest.mark.parametrize('params, which', [
    (dict(name=None, names=None, all_tarballs=False), 'neither'),
    (dict(name='a', names=None, all_tarballs=True), 'both'),
    (dict(name='a', names=['b'], all_tarballs=False), 'both'),
])
def test_both_or_neither_is_refused_saying_what_to_give(params, which):
    with pytest.raises(Failure, match=r'^Give name \(one environment\), or names and/or all_tarballs=true \(several\), not %s\.$' % which):
        asks_for_many(params)
