"""Recently stored bodies: recognised by route and bytes, within the window only, bounded in number."""

from __future__ import annotations

from bridge.repeats import RecentBodies


def test_known_within_the_window_by_route_and_bytes():
    recent = RecentBodies()
    key = recent.key("default", b'{"a": 1}')
    assert recent.group_of(key, now=100.0, window=120.0) is None
    recent.stored(key, at=100.0, group_key="g1")
    assert recent.group_of(key, now=219.9, window=120.0) == "g1"
    assert recent.group_of(key, now=220.0, window=120.0) is None  # the outbox's window is no shorter
    assert recent.group_of(recent.key("critical", b'{"a": 1}'), now=101.0, window=120.0) is None
    assert recent.group_of(recent.key("default", b'{"a": 1} '), now=101.0, window=120.0) is None


def test_forgets_the_oldest_beyond_its_size():
    recent = RecentBodies(size=2)
    keys = [recent.key("default", str(i).encode()) for i in range(3)]
    for i, key in enumerate(keys):
        recent.stored(key, at=float(i), group_key=f"g{i}")
    assert recent.group_of(keys[0], now=3.0, window=60.0) is None
    assert [recent.group_of(k, now=3.0, window=60.0) for k in keys[1:]] == ["g1", "g2"]
