"""Fitting a notification to a platform: cut long text, collapse to one line per alert, split, then "+N more"."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from bridge.model import Message
from bridge.render.context import AlertView, GroupView
from bridge.render.engine import Templates

__all__ = ["ELLIPSIS", "AlertLines", "Renderer", "cap_alert", "fit", "measure", "pack", "truncate"]

ELLIPSIS = "…"
T = TypeVar("T")


def measure(text: str) -> int:
    """Length as the platforms count it, conservatively: UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to `limit` (as platforms count) with an ellipsis; and whether it was cut."""
    if measure(text) <= limit:
        return text, False
    if limit <= 0:
        return "", True
    # Cut by code points first, then trim until the UTF-16 length fits (emoji count double).
    cut = text[: max(0, limit - 1)]
    while cut and measure(cut) > limit - 1:
        cut = cut[:-1]
    return cut.rstrip() + ELLIPSIS, True


def cap_alert(alert: AlertView, summary: int, description: int) -> tuple[AlertView, bool]:
    """The alert with summary and description cut to budgets, before any template sees them (links survive)."""
    s, cut_s = truncate(alert.summary, summary)
    d, cut_d = truncate(alert.description, description)
    if not (cut_s or cut_d):
        return alert, False
    return dataclasses.replace(alert, summary=s, description=d), True


class AlertLines:
    """Each alert's one-line form (`template`, summary capped, line cut to `max_len`), rendered once: packing
    tries many splits of the same alerts. Keyed by the view's identity, which outlives one renderer."""

    def __init__(self, templates: Templates, template: str, summary: int, max_len: int) -> None:
        self._templates, self._template, self._summary, self._max_len = templates, template, summary, max_len
        self._lines: dict[int, str] = {}

    def __call__(self, view: GroupView, a: AlertView) -> str:
        key = id(a)
        if key not in self._lines:
            capped, _ = cap_alert(a, self._summary, 0)
            text = self._templates.render(self._template, a=capped, group=view).strip()
            self._lines[key] = truncate(text, self._max_len)[0]
        return self._lines[key]


def pack(items: Sequence[T], fits: Callable[[Sequence[T]], bool], max_parts: int) -> tuple[list[list[T]], int]:
    """Greedy pages of consecutive items, each as full as `fits` allows, at most `max_parts` of them.

    Returns the pages and how many items were left over. `fits` must be monotone (dropping items never
    breaks a page); it is probed O(log n) times per page, so rendering a page may cost O(page).
    """
    pages: list[list[T]] = []
    start = 0
    n = len(items)
    while start < n and len(pages) < max_parts:
        if not fits(items[start : start + 1]):
            start += 1  # an item too large even alone (should not happen: lines are capped); counted as left over
            continue
        good, bad, step = 1, None, 1
        while start + good < n:  # grow exponentially, then bisect between what fits and what does not
            probe = min(n - start, good + step)
            if not fits(items[start : start + probe]):
                bad = probe
                break
            good, step = probe, step * 2
        while bad is not None and bad - good > 1:
            mid = (good + bad) // 2
            if fits(items[start : start + mid]):
                good = mid
            else:
                bad = mid
        lo = good
        pages.append(list(items[start : start + lo]))
        start += lo
    consumed = sum(len(p) for p in pages)
    return pages, n - consumed


class Renderer:
    """What a channel supplies to `fit`: how to build a body in each mode, and how to check it."""

    def full(self, view: GroupView, alerts: list[AlertView], more: int) -> tuple[Any, bool] | None:
        """Every alert in detail in one message, or None when that cannot fit (e.g. too many alerts)."""
        raise NotImplementedError

    def page(self, view: GroupView, alerts: list[AlertView], part: int, parts: int, more: int) -> Any:
        """One part of the collapsed form: one line per alert, numbered, "+N more" when `more`."""
        raise NotImplementedError

    def minimal(self, view: GroupView, more: int) -> Any:
        """The smallest useful message: status, title, and the "+N more" link."""
        raise NotImplementedError

    def check(self, body: Any) -> list[str]:
        """The platform's size and shape violations of a body (the channel's own limits check)."""
        raise NotImplementedError


def fit(view: GroupView, renderer: Renderer, max_parts: int) -> list[Message]:
    """Messages for a group: in full if it fits; else collapsed, split into up to `max_parts`, then "+N more"."""
    alerts = view.alerts
    already_left_out = view.truncated_alerts  # Alertmanager's max_alerts: not our cut, but still "+N more"
    full = renderer.full(view, alerts, already_left_out)
    if full is not None:
        body, cut = full
        if not renderer.check(body):
            return [Message(body=body, truncated=cut)]
    worst_more = len(alerts) + already_left_out
    max_parts = max(1, max_parts)

    def fits(chunk: Sequence[AlertView]) -> bool:
        return not renderer.check(renderer.page(view, list(chunk), max_parts, max_parts, worst_more))

    pages, left = pack(alerts, fits, max_parts)
    more = left + already_left_out
    messages = []
    for i, chunk in enumerate(pages, start=1):
        body = renderer.page(view, chunk, i, len(pages), more if i == len(pages) else 0)
        if renderer.check(body):  # a custom template outgrew its own measure: never send what would bounce
            body = renderer.minimal(view, len(alerts) + already_left_out)
        messages.append(Message(body=body, part=i, parts=len(pages), truncated=True))
    if not messages:
        messages.append(Message(body=renderer.minimal(view, worst_more), truncated=True))
    return messages
