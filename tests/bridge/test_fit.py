"""Fitting: truncation as platforms count, greedy packing, and the full → collapsed → +N more path."""

from __future__ import annotations

import pytest

from bridge.model import ChannelContext
from bridge.payload import parse_notification
from bridge.render.context import build_view
from bridge.render.fit import Renderer, fit, pack, truncate
from tests.fakes.payloads import alert, group


@pytest.mark.parametrize(
    ("text", "limit", "expected", "cut"),
    [
        pytest.param("short", 10, "short", False, id="fits"),
        pytest.param("0123456789", 10, "0123456789", False, id="exact"),
        pytest.param("0123456789ab", 10, "012345678…", True, id="cut"),
        pytest.param("🔴🔴🔴🔴🔴🔴", 6, "🔴🔴…", True, id="emoji-count-double"),
        pytest.param("abc", 0, "", True, id="zero"),
    ],
)
def test_truncate(text, limit, expected, cut):
    assert truncate(text, limit) == (expected, cut)


@pytest.mark.parametrize(
    ("n", "capacity", "max_parts", "pages", "left"),
    [
        pytest.param(10, 4, 3, [4, 4, 2], 0, id="fits-in-3"),
        pytest.param(20, 4, 3, [4, 4, 4], 8, id="left-over"),
        pytest.param(1, 4, 3, [1], 0, id="one"),
        pytest.param(0, 4, 3, [], 0, id="none"),
        pytest.param(500, 37, 3, [37, 37, 37], 389, id="many"),
    ],
)
def test_pack(n, capacity, max_parts, pages, left):
    calls = []

    def fits(chunk):
        calls.append(len(chunk))
        return len(chunk) <= capacity

    got, rest = pack(list(range(n)), fits, max_parts)
    assert [len(p) for p in got] == pages and rest == left
    assert [x for p in got for x in p] == list(range(n - left))  # order kept, nothing skipped
    assert len(calls) < 20 * max(1, len(pages))  # bisected, not one probe per item


class _Counting(Renderer):
    """A platform whose message holds at most `limit` alerts in full and `per_page` lines."""

    def __init__(self, limit: int, per_page: int) -> None:
        self.limit, self.per_page = limit, per_page

    def full(self, view, alerts, more):
        return {"mode": "full", "names": [a.name for a in alerts], "more": more, "n": len(alerts)}, False

    def page(self, view, alerts, part, parts, more):
        return {"mode": "page", "names": [a.name for a in alerts], "part": part, "parts": parts, "more": more,
                "n": len(alerts)}  # fmt: skip

    def minimal(self, view, more):
        return {"mode": "minimal", "more": more, "n": 0}

    def check(self, body):
        limit = self.limit if body["mode"] == "full" else self.per_page
        return ["too many"] if body["n"] > limit else []


def _view(n: int, truncated: int = 0):
    alerts = [alert(f"A{i}", "warning" if i % 2 else "critical", index=i) for i in range(n)]
    alerts.append(alert("Resolved", "critical", "resolved", index=999))
    return build_view(parse_notification(group(alerts, truncated=truncated)), ChannelContext(session=None))


def test_fits_in_full_when_it_can():
    (message,) = fit(_view(3), _Counting(limit=10, per_page=5), max_parts=3)
    assert message.body["mode"] == "full" and not message.truncated
    # firing critical first, then warning, resolved last
    assert message.body["names"] == ["A0", "A2", "A1", "Resolved"]


def test_collapses_splits_numbers_and_ends_with_more():
    messages = fit(_view(20, truncated=7), _Counting(limit=2, per_page=5), max_parts=3)
    assert [m.body["mode"] for m in messages] == ["page"] * 3
    assert [(m.part, m.parts) for m in messages] == [(1, 3), (2, 3), (3, 3)]
    assert [m.body["part"] for m in messages] == [1, 2, 3] and all(m.body["parts"] == 3 for m in messages)
    assert all(m.truncated for m in messages)
    assert [m.body["more"] for m in messages] == [0, 0, 21 - 15 + 7]  # left over plus Alertmanager's own cut
    assert messages[0].body["names"][:5] == ["A0", "A2", "A4", "A6", "A8"]  # criticals first


def test_collapsed_single_part_is_not_numbered():
    messages = fit(_view(4), _Counting(limit=2, per_page=10), max_parts=3)
    assert len(messages) == 1 and (messages[0].part, messages[0].parts) == (1, 1)
    assert messages[0].body["more"] == 0
