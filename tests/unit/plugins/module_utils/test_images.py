"""Removing our images: untagged and in use mean what the daemon means, and a daemon that refuses keeps the image."""

from __future__ import annotations

import types

import pytest
from docker.errors import APIError

from ansible_collections.kohakuriver.docker.plugins.module_utils import images

ENV = 'my-env'
LABELS = {'io.kohakuriver.docker.env': ENV, 'io.kohakuriver.docker.timestamp': '1700000000'}


def api_error(status, text):
    return APIError(text, response=types.SimpleNamespace(status_code=status, url='http://docker/', reason=text), explanation=text)


class Api(object):
    """A daemon's images (ID -> tags, labels) and containers (their image IDs), removed as Docker removes them."""

    def __init__(self, images_=None, used=()):
        self.images_ = dict((image_id, dict(tags=list(tags), labels=dict(labels)))
                            for image_id, (tags, labels) in (images_ or {}).items())
        self.used = list(used)
        self.removals = []
        self.refuse = {}

    def containers(self, all=False):  # pylint: disable=redefined-builtin
        assert all
        return [{'ImageID': image_id} for image_id in self.used]

    def _listed(self, image_id):
        return {'Id': image_id, 'RepoTags': self.images_[image_id]['tags'] or ['<none>:<none>']}

    def images(self, filters=None):
        found = []
        for image_id, image in sorted(self.images_.items()):
            wanted = (filters or {}).get('label', [])
            if all(image['labels'].get(label.partition('=')[0]) == label.partition('=')[2] if '=' in label
                   else label in image['labels'] for label in wanted):
                found.append(self._listed(image_id))
        return found

    def inspect_image(self, reference):
        for image_id, image in self.images_.items():
            if reference == image_id or reference in image['tags']:
                return self._listed(image_id)
        raise api_error(404, 'No such image: %s' % reference)

    def remove_image(self, reference):
        self.removals.append(reference)
        if reference in self.refuse:
            raise self.refuse[reference]
        for image_id, image in list(self.images_.items()):
            if reference in image['tags']:
                image['tags'].remove(reference)
                if not image['tags']:
                    del self.images_[image_id]
                return
            if reference == image_id:
                if image['tags'] and len(image['tags']) > 1:
                    raise api_error(409, 'image is referenced in multiple repositories')
                del self.images_[image_id]
                return
        raise api_error(404, 'No such image: %s' % reference)


def client(api):
    return types.SimpleNamespace(api=api)


def test_untagged_images_are_listed_with_none_none():
    assert images.tags_of({'RepoTags': ['<none>:<none>']}) == []
    assert images.tags_of({'RepoTags': None}) == []
    assert images.tags_of({'RepoTags': ['a:1', '<none>:<none>']}) == ['a:1']


def test_images_in_use_are_those_of_any_container():
    assert images.images_in_use(client(Api(used=['sha256:a', 'sha256:b']))) == {'sha256:a', 'sha256:b'}


def test_an_image_goes_through_its_tags_or_its_id():
    api = Api({'sha256:a': (['kohakuriver/my-env:1', 'kohakuriver/my-env:2'], {}), 'sha256:b': ([], {})})
    assert images.remove_through_tags(client(api), 'sha256:a', ['kohakuriver/my-env:1', 'kohakuriver/my-env:2']) is None
    assert images.remove_through_tags(client(api), 'sha256:b', []) is None
    assert api.images_ == {} and api.removals == ['kohakuriver/my-env:1', 'kohakuriver/my-env:2', 'sha256:b']


def test_a_refusal_of_the_daemon_keeps_the_image_and_other_errors_are_raised():
    api = Api({'sha256:a': ([], {})})
    api.refuse['sha256:a'] = api_error(409, 'conflict: image is being used by running container')
    refusal = images.remove_through_tags(client(api), 'sha256:a', [])
    assert refusal.status_code == 409 and 'sha256:a' in api.images_
    api.refuse['sha256:a'] = api_error(500, 'the daemon broke')
    with pytest.raises(APIError):
        images.remove_through_tags(client(api), 'sha256:a', [])


def test_only_an_untagged_image_is_removed_if_untagged():
    api = Api({'sha256:a': ([], {}), 'sha256:b': (['other:1'], {})})
    assert images.remove_if_untagged(client(api), 'sha256:a') is True
    assert images.remove_if_untagged(client(api), 'sha256:b') is False
    assert images.remove_if_untagged(client(api), 'sha256:gone') is False
    assert list(api.images_) == ['sha256:b']


def test_remove_quietly_never_raises():
    api = Api()
    api.refuse['sha256:a'] = OSError('the socket went away')
    assert images.remove_quietly(client(api), 'sha256:a') is False
    assert images.remove_quietly(client(Api({'sha256:b': ([], {})})), 'sha256:b') is True


def committed():
    return Api({
        'sha256:current': (['kohakuriver/my-env:base'], LABELS),
        'sha256:old': (['kohakuriver/my-env:1600000000'], LABELS),
        'sha256:untagged': ([], LABELS),
        'sha256:used': ([], LABELS),
        'sha256:shared': (['kohakuriver/my-env:1500000000', 'mine:latest'], LABELS),
        'sha256:another-env': ([], {'io.kohakuriver.docker.env': 'other', 'io.kohakuriver.docker.timestamp': '1'}),
        'sha256:pulled': (['busybox:latest'], {}),
    }, used=['sha256:used'])


def test_committed_images_go_unless_used_or_tagged_elsewhere():
    api = committed()
    removed, kept = images.remove_committed_images(client(api), ENV, keep_id='sha256:current')
    assert removed == ['sha256:old', 'sha256:untagged']
    assert kept == ['sha256:shared: also tagged mine:latest', 'sha256:used: a container uses it']
    assert sorted(api.images_) == ['sha256:another-env', 'sha256:current', 'sha256:pulled', 'sha256:shared', 'sha256:used']


def test_check_mode_removes_no_committed_image_but_says_which_would_go():
    api = committed()
    removed, kept = images.remove_committed_images(client(api), ENV, check_mode=True)
    assert removed == ['sha256:current', 'sha256:old', 'sha256:untagged'] and len(kept) == 2
    assert api.removals == [] and len(api.images_) == 7


def test_a_committed_image_the_daemon_refuses_to_remove_is_kept_with_its_answer():
    api = committed()
    api.refuse['sha256:untagged'] = api_error(409, 'conflict: unable to delete sha256:untagged')
    removed, kept = images.remove_committed_images(client(api), ENV, keep_id='sha256:current')
    assert removed == ['sha256:old']
    assert 'sha256:untagged: conflict: unable to delete sha256:untagged' in kept
