"""The write side of the tarball folder: timestamps, temporary files, atomic publish, retention, cleanup, names."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.kohakuriver.docker.plugins.module_utils import store
from ansible_collections.kohakuriver.docker.plugins.module_utils.errors import Failure


def touch(folder, name, data=b'x', mtime=None):
    path = folder / name
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def sidecar(env, timestamp):
    return {'format': store.SIDECAR_FORMAT, 'env': env, 'timestamp': timestamp, 'sha256': 'ab' * 32}


@pytest.mark.parametrize('now, newest, expected', [
    (1700000000.9, None, 1700000000),
    (1700000000.2, 1699999999, 1700000000),
    (1700000000.5, 1700000000, 1700000001),
    (1700000000.0, 1700000005, 1700000006),
])
def test_timestamp_is_now_but_always_after_the_newest_tarball(now, newest, expected):
    assert store.choose_timestamp(now, newest) == expected


def test_wait_until_sleeps_until_the_clock_reaches_the_timestamp():
    clock = [100.25]

    def sleep(seconds):
        assert seconds > 0
        clock[0] += seconds

    store.wait_until(102, clock=lambda: clock[0], sleep=sleep)
    assert 102 <= clock[0] < 102.3
    before = clock[0]
    store.wait_until(101, clock=lambda: clock[0], sleep=sleep)
    assert clock[0] == before


def test_missing_folder_is_created_0755_whatever_the_umask(tmp_path):
    folder = tmp_path / 'kohakuriver-containers'
    old = os.umask(0o077)
    try:
        assert store.ensure_folder(str(folder), check_mode=True) is True
        assert not folder.exists()
        assert store.ensure_folder(str(folder)) is True
    finally:
        os.umask(old)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755
    assert store.ensure_folder(str(folder)) is False


def test_folder_whose_parent_is_missing_is_refused_not_created(tmp_path):
    folder = tmp_path / 'not-mounted' / 'kohakuriver-containers'
    with pytest.raises(Failure, match='mount the shared storage'):
        store.ensure_folder(str(folder))
    assert not folder.parent.exists()


def test_a_file_in_place_of_the_folder_is_refused(tmp_path):
    touch(tmp_path, 'kohakuriver-containers')
    with pytest.raises(Failure, match='is not a folder'):
        store.ensure_folder(str(tmp_path / 'kohakuriver-containers'))


def test_temporary_names_are_hidden_and_never_tarball_names(tmp_path):
    final = tmp_path / 'my-env-1700000000.tar'
    path, fd = store.create_temp(str(final))
    os.close(fd)
    name = os.path.basename(path)
    assert name.startswith('.my-env-1700000000.tar.') and name.endswith('.partial')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert store.list_tarballs(str(tmp_path)) == []
    assert store.temp_path_for(str(final)) != path


def test_write_all_writes_every_byte(tmp_path):
    path, fd = store.create_temp(str(tmp_path / 'e-1.tar'))
    for data in [b'abc', b'', memoryview(b'xdefg')[1:]]:
        store.write_all(fd, data, path)
    store.seal(fd, path, 0o644)
    assert open(path, 'rb').read() == b'abcdefg'
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_a_full_disk_is_a_clear_failure():
    fd = os.open('/dev/full', os.O_WRONLY)
    try:
        with pytest.raises(Failure) as failure:
            store.write_all(fd, b'x' * 4096, '/somewhere/.e-1.tar.1.abcdef012345.partial')
    finally:
        os.close(fd)
    assert failure.value.msg == ('Tarball folder /somewhere is full (No space left on device) after 0 bytes of the image; '
                                 'free space or set tarball_dir. Nothing was published.')


def test_publish_writes_the_sidecar_before_the_tarball_name_appears(tmp_path, monkeypatch):
    final = tmp_path / 'my-env-1700000000.tar'
    temp, fd = store.create_temp(str(final))
    store.write_all(fd, b'tarball bytes', temp)
    store.seal(fd, temp, 0o644)
    seen_at_link = []
    real_link = os.link

    def link(source, target):
        seen_at_link.append(os.path.exists(str(target) + '.json'))
        real_link(source, target)

    monkeypatch.setattr(os, 'link', link)
    store.publish(temp, str(final), sidecar('my-env', 1700000000), 0o644)
    assert seen_at_link == [True]
    assert final.read_bytes() == b'tarball bytes'
    assert json.loads((tmp_path / 'my-env-1700000000.tar.json').read_text())['timestamp'] == 1700000000
    assert stat.S_IMODE((tmp_path / 'my-env-1700000000.tar.json').stat().st_mode) == 0o644
    assert sorted(os.listdir(tmp_path)) == ['my-env-1700000000.tar', 'my-env-1700000000.tar.json']
    assert store.newest_tarball(str(tmp_path), 'my-env').sidecar['sha256'] == 'ab' * 32


def test_publish_without_hard_links_falls_back_to_rename(tmp_path, monkeypatch):
    final = tmp_path / 'e-5.tar'
    temp, fd = store.create_temp(str(final))
    store.seal(fd, temp, 0o644)

    def no_links(source, target):
        raise OSError(1, 'Operation not permitted')

    monkeypatch.setattr(os, 'link', no_links)
    store.publish(temp, str(final), sidecar('e', 5), 0o644)
    assert sorted(os.listdir(tmp_path)) == ['e-5.tar', 'e-5.tar.json']


def test_publish_never_replaces_an_existing_tarball(tmp_path):
    touch(tmp_path, 'e-5.tar', b'older')
    touch(tmp_path, 'e-5.tar.json', b'{"old": 1}')
    temp, fd = store.create_temp(str(tmp_path / 'e-5.tar'))
    store.seal(fd, temp, 0o644)
    with pytest.raises(Failure, match='appeared while this tarball was made'):
        store.publish(temp, str(tmp_path / 'e-5.tar'), sidecar('e', 5), 0o644)
    assert (tmp_path / 'e-5.tar').read_bytes() == b'older'
    assert (tmp_path / 'e-5.tar.json').read_bytes() == b'{"old": 1}'


def test_retention_keeps_the_newest_and_never_touches_another_environment(tmp_path):
    for timestamp in (1, 2, 3):
        touch(tmp_path, 'env-%d.tar' % timestamp)
        touch(tmp_path, 'env-%d.tar.json' % timestamp)
    touch(tmp_path, 'env-2-1700000000.tar')
    touch(tmp_path, 'env-2-1700000000.tar.json')
    removed = store.remove_beyond(str(tmp_path), 'env', 2)
    assert removed == [str(tmp_path / 'env-1.tar')]
    assert sorted(os.listdir(tmp_path)) == ['env-2-1700000000.tar', 'env-2-1700000000.tar.json',
                                            'env-2.tar', 'env-2.tar.json', 'env-3.tar', 'env-3.tar.json']
    assert store.remove_beyond(str(tmp_path), 'env', 1) == [str(tmp_path / 'env-2.tar')]
    assert store.remove_beyond(str(tmp_path), 'env', 1) == []


def test_cleanup_removes_only_our_stale_temporaries_and_orphan_sidecars(tmp_path):
    old, new = 1000, 3000
    stale = [
        touch(tmp_path, '.env-5.tar.123.0123456789ab.partial', mtime=old),
        touch(tmp_path, '.env-5.tar.json.123.0123456789ab.partial', mtime=old),
        touch(tmp_path, 'env-4.tar.json'),
        touch(tmp_path, '.env.restart.123.0123456789ab.partial', mtime=old),
    ]
    kept = [
        touch(tmp_path, '.env-5.tar.124.0123456789ab.partial', mtime=new),
        touch(tmp_path, '.env-2-5.tar.123.0123456789ab.partial', mtime=old),
        touch(tmp_path, '.env-2.restart.123.0123456789ab.partial', mtime=old),
        touch(tmp_path, '.env.restart', mtime=old),
        touch(tmp_path, '.env-5.tar.partial', mtime=old),
        touch(tmp_path, '.env.package.lock', mtime=old),
        touch(tmp_path, 'env-3.tar'),
        touch(tmp_path, 'env-3.tar.json'),
        touch(tmp_path, 'env-2-4.tar.json'),
        touch(tmp_path, 'notes.txt', mtime=old),
    ]
    cleaned = store.clean_stale(str(tmp_path), 'env', before=2000)
    assert sorted(cleaned) == sorted(str(path) for path in stale)
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in stale)


@pytest.mark.parametrize('file_name, message', [
    ('../env-1.tar', 'without any folder'),
    ('/tmp/env-1.tar', 'without any folder'),
    ('sub/env-1.tar', 'without any folder'),
    ('..', 'without any folder'),
    ('env-1.tar.json', 'is not a tarball file name'),
    ('.env-1.tar.1.0123456789ab.partial', 'is not a tarball file name'),
    ('env-latest.tar', 'is not a tarball file name'),
    ('env-2-1.tar', 'belongs to environment env-2, not to env'),
])
def test_named_tarball_refuses_anything_but_a_tarball_name_of_the_environment(tmp_path, file_name, message):
    with pytest.raises(Failure, match=message):
        store.named_tarball(str(tmp_path), 'env', file_name)


@pytest.mark.parametrize('given', ['kohakuriver-containers', './share', '', None])
def test_a_relative_tarball_dir_is_refused_in_one_line(given):
    with pytest.raises(Failure) as failure:
        store.tarball_folder(given)
    assert failure.value.msg == 'tarball_dir %r is not an absolute path: give the folder from the root, like ' \
        '/mnt/cluster-share/kohakuriver-containers.' % (given,)


def test_an_absolute_tarball_dir_is_normalised():
    assert store.tarball_folder('/mnt/share//kohakuriver-containers/') == '/mnt/share/kohakuriver-containers'


def test_the_link_rule_is_one_for_named_and_listed_tarballs(tmp_path):
    folder = tmp_path / 'tarballs'
    folder.mkdir()
    outside = touch(tmp_path, 'precious.tar')
    (folder / 'env-1.tar').symlink_to(outside)
    (folder / 'env-2.tar').symlink_to('env-3.tar')
    touch(folder, 'env-3.tar')
    assert store.link_out_of(str(folder), str(folder / 'env-1.tar')) == str(outside)
    assert store.link_out_of(str(folder), str(folder / 'env-2.tar')) is None
    assert store.link_out_of(str(folder), str(folder / 'env-3.tar')) is None
    with pytest.raises(Failure, match='refusing to load it. Put the file itself in'):
        store.refuse_link_out_of(str(folder), str(folder / 'env-1.tar'), 'load it')
    listed = dict((entry['file'], entry) for entry in map(store.describe_tarball, store.list_tarballs(str(folder))))
    assert not listed['env-1.tar']['verified'] and 'link pointing out of tarball_dir (to %s)' % outside in listed['env-1.tar']['problem']
    assert listed['env-2.tar']['problem'] is None


def test_a_sidecar_recording_another_size_leaves_the_tarball_unverified(tmp_path):
    touch(tmp_path, 'env-1700000000.tar', b'12345')
    (tmp_path / 'env-1700000000.tar.json').write_text(json.dumps(dict(sidecar('env', 1700000000), size=4)))
    described = store.describe_tarball(store.list_tarballs(str(tmp_path))[0])
    assert not described['verified'] and described['problem'] == '%s is 5 bytes, its sidecar %s.json says 4.' % (
        tmp_path / 'env-1700000000.tar', tmp_path / 'env-1700000000.tar')


def test_named_tarball_refuses_a_link_out_of_the_folder(tmp_path):
    folder = tmp_path / 'tarballs'
    folder.mkdir()
    outside = touch(tmp_path, 'precious.tar')
    (folder / 'env-1.tar').symlink_to(outside)
    with pytest.raises(Failure, match='is a link pointing out of tarball_dir'):
        store.named_tarball(str(folder), 'env', 'env-1.tar')
    (folder / 'env-2.tar').symlink_to('../tarballs/env-3.tar')
    touch(folder, 'env-3.tar')
    assert store.named_tarball(str(folder), 'env', 'env-2.tar').path == str(folder / 'env-2.tar')


def test_named_tarball_finds_or_misses_a_file(tmp_path):
    touch(tmp_path, 'env-1.tar')
    (tmp_path / 'env-9.tar').mkdir()
    assert store.named_tarball(str(tmp_path), 'env', 'env-1.tar').timestamp == 1
    assert store.named_tarball(str(tmp_path), 'env', 'env-2.tar') is None
    with pytest.raises(Failure, match='is not a regular file'):
        store.named_tarball(str(tmp_path), 'env', 'env-9.tar')


def test_remove_tarball_removes_file_then_sidecar(tmp_path):
    touch(tmp_path, 'env-1.tar')
    touch(tmp_path, 'env-1.tar.json')
    tarball = store.named_tarball(str(tmp_path), 'env', 'env-1.tar')
    assert store.remove_tarball(tarball) == [str(tmp_path / 'env-1.tar'), str(tmp_path / 'env-1.tar.json')]
    assert os.listdir(tmp_path) == []


def test_describe_tarball_marks_tarballs_without_sidecar_unverified(tmp_path):
    touch(tmp_path, 'env-1700000000.tar', b'12345')
    touch(tmp_path, 'env-1700000001.tar', b'123')
    (tmp_path / 'env-1700000001.tar.json').write_text(json.dumps(dict(sidecar('env', 1700000001), image_id='sha256:' + 'c' * 64)))
    described = [store.describe_tarball(tarball) for tarball in store.list_tarballs(str(tmp_path))]
    assert described == [
        {'env': 'env', 'timestamp': 1700000001, 'date': '2023-11-14T22:13:21Z', 'file': 'env-1700000001.tar',
         'path': str(tmp_path / 'env-1700000001.tar'), 'size': 3, 'verified': True, 'sha256': 'ab' * 32,
         'image_id': 'sha256:' + 'c' * 64, 'problem': None},
        {'env': 'env', 'timestamp': 1700000000, 'date': '2023-11-14T22:13:20Z', 'file': 'env-1700000000.tar',
         'path': str(tmp_path / 'env-1700000000.tar'), 'size': 5, 'verified': False, 'sha256': None, 'image_id': None, 'problem': None},
    ]
    (tmp_path / 'env-1700000000.tar.json').write_text('{"format": "something else"}')
    damaged = store.describe_tarball(store.list_tarballs(str(tmp_path))[1])
    assert damaged['verified'] is False and 'format is "something else", not "kohakuriver.docker/tarball-v1"' in damaged['problem']


def test_tarball_info_lists_the_asked_environment_of_the_validated_folder(tmp_path):
    for name in ('a-1.tar', 'a-2.tar', 'b-3.tar'):
        (tmp_path / name).write_bytes(b'x')
    listed = store.tarball_info(store.InfoRequest(dict(name='a', tarball_dir=str(tmp_path) + '/')))
    assert not listed['changed'] and [tarball['file'] for tarball in listed['tarballs']] == ['a-2.tar', 'a-1.tar']
    assert len(store.tarball_info(store.InfoRequest(dict(name=None, tarball_dir=str(tmp_path))))['tarballs']) == 3
    with pytest.raises(Failure, match='not a valid environment name'):
        store.InfoRequest(dict(name='A/B', tarball_dir=str(tmp_path)))
    with pytest.raises(Failure, match='not an absolute path'):
        store.InfoRequest(dict(name=None, tarball_dir='relative'))


# Pins: a kept tarball chosen by file name or timestamp, and protected from retention.

@pytest.mark.parametrize('pin', ['my-env-1700000001.tar', '1700000001', 1700000001, ' 1700000001 '])
def test_a_pin_is_a_file_name_or_a_timestamp(pin):
    assert store.pin_timestamp('my-env', pin) == 1700000001


@pytest.mark.parametrize('pin, says', [
    ('other-1700000001.tar', 'a tarball of environment other, not of my-env'),
    ('my-env-2-1700000001.tar', 'environment my-env-2, not of my-env'),
    ('../my-env-1700000001.tar', 'neither a tarball file name'),
    ('my-env-1700000001.tar.json', 'neither a tarball file name'),
    ('', 'neither a tarball file name'),
    (True, 'neither a tarball file name'),
    ('-5', 'neither a tarball file name'),
])
def test_a_bad_pin_says_what_a_pin_is(pin, says):
    with pytest.raises(Failure) as raised:
        store.pin_timestamp('my-env', pin)
    assert says in raised.value.msg and '\n' not in raised.value.msg


def test_chosen_tarball_is_the_newest_or_the_pinned_one_and_a_missing_pin_lists_the_kept_ones(tmp_path):
    for timestamp in (1700000001, 1700000002, 1700000003):
        touch(tmp_path, 'my-env-%d.tar' % timestamp)
    kept = store.list_tarballs(str(tmp_path), 'my-env')
    assert store.chosen_tarball(kept, str(tmp_path), 'my-env').timestamp == 1700000003
    assert store.chosen_tarball(kept, str(tmp_path), 'my-env', '1700000002').file_name == 'my-env-1700000002.tar'
    assert store.chosen_tarball(kept, str(tmp_path), 'my-env', 'my-env-1700000001.tar').timestamp == 1700000001
    assert store.chosen_tarball([], str(tmp_path), 'my-env') is None
    with pytest.raises(Failure) as raised:
        store.chosen_tarball(kept, str(tmp_path), 'my-env', '1700000000')
    assert raised.value.msg == ('pin 1700000000 is not a kept tarball of environment my-env in %s; kept: my-env-1700000003.tar, '
                                'my-env-1700000002.tar, my-env-1700000001.tar.' % tmp_path)


def test_retention_never_removes_a_protected_tarball(tmp_path):
    for timestamp in (1700000001, 1700000002, 1700000003, 1700000004):
        touch(tmp_path, 'my-env-%d.tar' % timestamp)
        touch(tmp_path, 'my-env-%d.tar.json' % timestamp, b'{}')
    protect = store.protected_timestamps('my-env', ['my-env-1700000002.tar', '1700000009'])
    names = [tarball.file_name for tarball in store.list_tarballs(str(tmp_path), 'my-env')]
    assert store.names_kept(names, 1, protect) == ['my-env-1700000004.tar', 'my-env-1700000002.tar']
    removed = store.remove_beyond(str(tmp_path), 'my-env', 1, protect)
    assert sorted(os.path.basename(path) for path in removed) == ['my-env-1700000001.tar', 'my-env-1700000003.tar']
    assert sorted(os.listdir(tmp_path)) == ['my-env-1700000002.tar', 'my-env-1700000002.tar.json', 'my-env-1700000004.tar',
                                            'my-env-1700000004.tar.json']


def test_protect_must_be_a_list_of_pins():
    assert store.protected_timestamps('my-env', None) == frozenset()
    with pytest.raises(Failure, match='protect must be a list'):
        store.protected_timestamps('my-env', '1700000001')
    with pytest.raises(Failure, match='other, not of my-env'):
        store.protected_timestamps('my-env', ['other-1700000001.tar'])
