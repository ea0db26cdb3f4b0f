"""merge_layers: layer tars applied in order give one layer tar; checked by applying both ways with tarfile."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

from ansible_collections.kohakuriver.docker.plugins.module_utils.squash import merge_layers, squashed_config


def layer(*entries):
    """A layer tar of (name, content) (content None: a folder; ('link', target): a hard link)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode='w', format=tarfile.PAX_FORMAT) as archive:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                archive.addfile(info)
            elif isinstance(content, tuple):
                info.type, info.linkname = tarfile.LNKTYPE, content[1]
                archive.addfile(info)
            else:
                info.size = len(content)
                archive.addfile(info, io.BytesIO(content))
    data.seek(0)
    return data


def apply(tree, data):
    """Apply a layer tar to tree ({path: content}) as overlayfs would show it."""
    with tarfile.open(fileobj=data, mode='r:') as archive:
        entries = list(archive)
        for info in entries:
            parent, _sep, base = info.name.rstrip('/').rpartition('/')
            if base == '.wh..wh..opq':
                for path in [p for p in tree if p.startswith(parent + '/')]:
                    if not any(e.name.rstrip('/') == path for e in entries):
                        del tree[path]
        for info in entries:
            name = info.name.rstrip('/')
            parent, _sep, base = name.rpartition('/')
            if base == '.wh..wh..opq':
                continue
            if base.startswith('.wh.'):
                gone = (parent + '/' if parent else '') + base[4:]
                for path in [p for p in tree if p == gone or p.startswith(gone + '/')]:
                    del tree[path]
            elif info.isdir():
                tree.setdefault(name, None)
            elif info.islnk():
                tree[name] = tree[info.linkname]
            else:
                tree[name] = archive.extractfile(info).read()
    return tree


BASE = {'etc': None, 'etc/base': b'base', 'opt': None, 'opt/old': b'old'}


def check(*layers):
    expected = dict(BASE)
    for data in layers:
        apply(expected, data)
        data.seek(0)
    merged = io.BytesIO()
    diff_id = merge_layers(list(layers), merged)
    assert diff_id == 'sha256:' + hashlib.sha256(merged.getvalue()).hexdigest()
    merged.seek(0)
    assert apply(dict(BASE), merged) == expected
    return expected


def test_newer_versions_win_and_deletions_reach_the_base_and_older_layers():
    result = check(layer(('app', None), ('app/one', b'1'), ('app/gone', b'x')),
                   layer(('app', None), ('app/one', b'1b'), ('app/.wh.gone', b''), ('etc', None), ('etc/.wh.base', b'')),
                   layer(('app', None), ('app/two', b'2')))
    assert result['app/one'] == b'1b' and 'app/gone' not in result and 'etc/base' not in result


def test_an_opaque_folder_hides_older_layers_and_the_base():
    result = check(layer(('opt', None), ('opt/new', b'n')),
                   layer(('opt', None), ('opt/.wh..wh..opq', b''), ('opt/newest', b'm')))
    assert sorted(p for p in result if p.startswith('opt/')) == ['opt/newest']


def test_a_file_replaced_by_a_folder_and_back_and_hard_links():
    check(layer(('thing', b'file'), ('data', b'd'), ('alias', ('link', 'data'))),
          layer(('.wh.thing', b''), ('thing', None), ('thing/inside', b'i')),
          layer(('data', b'new')))


def test_the_squashed_config_keeps_the_base_history_and_adds_one_entry():
    config = dict(created='2026-01-01T00:00:00Z', config={'Cmd': ['sh']},
                  rootfs=dict(type='layers', diff_ids=['sha256:a', 'sha256:b', 'sha256:c']),
                  history=[dict(created_by='base'), dict(empty_layer=True), dict(created_by='one'), dict(created_by='two')])
    result = json.loads(squashed_config(config, ['sha256:a'], 'sha256:z', 2))
    assert result['rootfs']['diff_ids'] == ['sha256:a', 'sha256:z'] and result['config'] == {'Cmd': ['sh']}
    assert [entry.get('created_by') for entry in result['history']] == ['base', 'kohakuriver.docker: 2 layers squashed into one']
