"""repeated: the items a list holds more than once."""

from __future__ import annotations

from ansible_collections.kohakuriver.docker.plugins.filter.repeated import repeated


def test_repeated_names_each_item_seen_twice_once_in_order():
    assert repeated(['a', 'b', 'a', 'c', 'b', 'a']) == ['a', 'b']
    assert repeated([]) == [] and repeated(['x', 'y']) == []
