"""Routing: which channels get a notification. Routes, default channels, route labels, and `send_resolved`.

Decided once, at intake: the outbox holds one delivery per chosen channel, and delivery sends them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from bridge.model import ChannelSettings, Notification

__all__ = ["DEFAULT_ROUTE", "ROUTE_NAME", "Route", "Routing", "route_label", "select_channels"]

DEFAULT_ROUTE = "default"  # the `route` label of POST /alerts
ROUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")  # route paths and channel names


@dataclass(frozen=True)
class Route:
    """One YAML route: matches a receiver path and/or labels; sends to its channels; maybe continues."""

    channels: tuple[str, ...]
    path: str | None = None  # the {route} of POST /alerts/{route}; None: any
    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    continue_: bool = False
    send_resolved: bool = True

    def matches(self, route: str, notification: Notification) -> bool:
        if self.path is not None and self.path != route:
            return False
        if not self.match and not self.match_re:
            return True
        # A group matches when any of its alerts does (its labels over the group's common labels), so that
        # `severity: critical` catches a mixed group holding one critical alert.
        return any(self._labels_match({**notification.common_labels, **a.labels}) for a in notification.alerts)

    def _labels_match(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k, "") != v for k, v in self.match.items()):
            return False
        return all(p.fullmatch(labels.get(k, "")) for k, p in self.match_re.items())


@dataclass(frozen=True)
class Routing:
    """Where notifications go: channels that get every one, routes tried in order, and the fallback."""

    broadcast: tuple[str, ...] = ()  # channels from the environment (and console): every notification
    routes: tuple[Route, ...] = ()
    default_channels: tuple[str, ...] = ()

    @property
    def route_names(self) -> tuple[str, ...]:
        """Route labels known up front: the default one and every YAML route path."""
        return (DEFAULT_ROUTE, *sorted({r.path for r in self.routes if r.path}))


def route_label(route: str | None) -> str:
    """The `route` metric label of a receiver path: its name, "default" for /alerts, "other" if odd."""
    if not route:
        return DEFAULT_ROUTE
    return route if ROUTE_NAME.match(route) else "other"


def select_channels(
    routing: Routing, channels: Mapping[str, ChannelSettings], route: str, notification: Notification
) -> list[str]:
    """Channel names for one notification: broadcast channels, then routes, else the default channels.

    A resolved notification skips routes and channels that say `send_resolved: false`.
    """
    resolved = notification.state == "resolved"
    chosen: list[str] = list(routing.broadcast)
    matched = False
    for r in routing.routes:
        if not r.matches(route, notification):
            continue
        matched = True
        if not (resolved and not r.send_resolved):
            chosen.extend(r.channels)
        if not r.continue_:
            break
    if not matched:
        chosen.extend(routing.default_channels)
    out: list[str] = []
    for name in chosen:
        settings = channels.get(name)
        if name in out or settings is None or (resolved and not settings.send_resolved):
            continue
        out.append(name)
    return out
