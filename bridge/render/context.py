"""The view model every template sees: one notification turned into what an on-call engineer needs to read."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from urllib.parse import quote, urljoin, urlsplit

from bridge.model import Alert, ChannelContext, Notification
from bridge.render.escape import Url, safe_url

__all__ = [
    "SEVERITY_COLOURS",
    "AlertView",
    "GroupView",
    "alert_order",
    "build_view",
    "format_duration",
    "format_time",
    "matcher_filter",
]

_MAX_GROUP_URL = 2000  # characters; Discord refuses longer URLs, Teams cards have 20,000 bytes in all

# Labels worth a line in a message; the rest (every label) would drown the summary.
SHOWN_LABELS = ("model", "job", "instance")

# Colour per severity (and green for resolved), as 0xRRGGBB.
SEVERITY_COLOURS = {"critical": 0xD32F2F, "warning": 0xF9A825, "info": 0x1E88E5, "none": 0x9E9E9E}
RESOLVED_COLOUR = 0x2E7D32
_SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
_EMOJI = {"critical": "🔴", "warning": "🟠", "info": "🔵"}


@dataclass(frozen=True)
class AlertView:
    status: str  # "firing" | "resolved"
    STATUS: str  # "FIRING" | "RESOLVED"
    name: str
    severity: str
    colour: int
    colour_hex: str
    emoji: str
    summary: str
    description: str
    labels: dict[str, str]  # only the labels that matter (model, job, instance), in that order
    started: str
    ended: str | None
    duration: str | None  # how long it lasted, when resolved
    runbook_url: Url | None
    runbook_text: str | None  # a relative runbook_url with no RUNBOOK_BASE_URL: shown, not linked
    dashboard_url: Url | None
    silence_url: Url | None
    source_url: Url | None
    fingerprint: str
    fired: int | None = None  # times it fired in the last 24 h (from Prometheus' ALERTS), when known


@dataclass(frozen=True)
class GroupView:
    status: str
    STATUS: str
    title: str  # the alert name, or "N alerts" when the group mixes names
    severity: str  # the highest severity among firing alerts (else among all)
    colour: int
    colour_hex: str
    emoji: str
    firing_count: int
    resolved_count: int
    truncated_alerts: int  # alerts Alertmanager itself left out (max_alerts)
    receiver: str
    group_labels: dict[str, str]
    alertmanager_url: Url | None
    group_url: Url | None  # Alertmanager's alert list filtered on this group
    alerts: list[AlertView] = field(default_factory=list)
    duration: str | None = None  # once resolved: from the first alert's start to the last one's end
    chart_url: Url | None = None  # the chart the bridge serves (BRIDGE_PUBLIC_URL), for platforms that fetch it
    has_chart: bool = False  # a chart goes with the message (attached, or at chart_url)

    @property
    def counts(self) -> str:
        parts = []
        if self.firing_count:
            parts.append(f"{self.firing_count} firing")
        if self.resolved_count:
            parts.append(f"{self.resolved_count} resolved")
        if self.truncated_alerts:
            parts.append(f"{self.truncated_alerts} not sent by Alertmanager")
        return ", ".join(parts)


def _is_internal(url: str) -> bool:
    """A URL an on-call engineer cannot open: a bare service name (`prometheus:9090`) or loopback."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return True
    if not host or host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host  # a Compose service or container name
    return ip.is_loopback or ip.is_unspecified


def _external(url: str, override: str | None) -> str:
    """`url`, or the configured external base in its place when `url` is internal."""
    if override and (not url or _is_internal(url)):
        return override
    return url


def _rebase(url: str, override: str | None) -> str:
    """An internal URL moved onto the configured external base, keeping its path and query."""
    if not override or not url or not _is_internal(url):
        return url
    parts = urlsplit(url)
    rest = parts.path + (f"?{parts.query}" if parts.query else "") + (f"#{parts.fragment}" if parts.fragment else "")
    return override.rstrip("/") + rest


def matcher_filter(labels: dict[str, str]) -> str:
    """Alertmanager's filter syntax, `{a="1",b="2"}`, quoted for a URL."""

    def q(v: str) -> str:
        return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    inner = ",".join(f'{k}="{q(v)}"' for k, v in sorted(labels.items()))
    return quote("{" + inner + "}", safe="")


def format_duration(delta: timedelta) -> str:
    """`2h 5m`, `3m 10s`, `12s`: precise enough to read, short enough for a line."""
    seconds = max(0, int(delta.total_seconds()))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def format_time(t: datetime, zone: tzinfo | None = None) -> str:
    """`2024-05-01 12:00:00 UTC`: every time in one zone (UTC, or BRIDGE_TIMEZONE), whatever offset it came with."""
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(zone or UTC)
    return t.strftime("%Y-%m-%d %H:%M:%S ") + (t.tzname() or "UTC")


def alert_order(alert: Alert) -> tuple[int, int]:
    """Sort key: firing before resolved, then critical, warning, info, the rest."""
    return (0 if alert.status == "firing" else 1, _SEVERITY_RANK.get(alert.severity, 3))


def _colour(status: str, severity: str) -> int:
    if status == "resolved":
        return RESOLVED_COLOUR
    return SEVERITY_COLOURS.get(severity, SEVERITY_COLOURS["none"])


def _emoji(status: str, severity: str) -> str:
    return "✅" if status == "resolved" else _EMOJI.get(severity, "⚪")


def _link(url: str | None, base: str | None) -> tuple[Url | None, str | None]:
    """A link from an annotation: absolute as is, relative joined to `base`; else the text to show instead."""
    if not url:
        return None, None
    absolute = safe_url(url)
    if absolute:
        return absolute, None
    if base:
        joined = safe_url(urljoin(base.rstrip("/") + "/", url.lstrip("/")))
        if joined:
            return joined, None
    return None, url


def _alert_view(alert: Alert, ctx: ChannelContext, alertmanager_url: str, fired: Mapping[str, int]) -> AlertView:
    status = alert.status
    severity = alert.severity
    duration = format_duration(alert.ends_at - alert.starts_at) if status == "resolved" and alert.ends_at else None
    runbook_url, runbook_text = _link(alert.annotations.get("runbook_url"), ctx.runbook_base_url)
    dashboard_url, _ = _link(alert.annotations.get("dashboard_url"), ctx.grafana_url)
    if dashboard_url is None:
        dashboard_url = safe_url(ctx.grafana_url)
    silence_url = None
    if alertmanager_url:
        silence_url = safe_url(f"{alertmanager_url.rstrip('/')}/#/silences/new?filter={matcher_filter(alert.labels)}")
    colour = _colour(status, severity)
    return AlertView(
        status=status,
        STATUS=status.upper(),
        name=alert.name or "(unnamed alert)",
        severity=severity,
        colour=colour,
        colour_hex=f"#{colour:06X}",
        emoji=_emoji(status, severity),
        summary=alert.annotations.get("summary", ""),
        description=alert.annotations.get("description", ""),
        labels={k: alert.labels[k] for k in SHOWN_LABELS if alert.labels.get(k)},
        started=format_time(alert.starts_at, ctx.timezone),
        ended=format_time(alert.ends_at, ctx.timezone) if alert.ends_at else None,
        duration=duration,
        runbook_url=runbook_url,
        runbook_text=runbook_text,
        dashboard_url=dashboard_url,
        silence_url=silence_url,
        source_url=safe_url(_rebase(alert.generator_url, ctx.prometheus_url)),
        fingerprint=alert.fingerprint,
        fired=fired.get(alert.fingerprint),
    )


def build_view(notification: Notification, ctx: ChannelContext) -> GroupView:
    """The view of a notification, alerts in reading order: firing critical first, resolved last."""
    alerts = sorted(notification.alerts, key=alert_order)  # stable: Alertmanager's order within a rank
    am_url = _external(notification.external_url, ctx.alertmanager_url)
    extras = notification.extras
    views = [_alert_view(a, ctx, am_url, extras.fired) for a in alerts]
    names = {v.name for v in views}
    ranked = [a for a in alerts if a.status == "firing"] or alerts
    severity = ranked[0].severity if ranked else "none"
    status = notification.state
    colour = _colour(status, severity)
    group = notification.group_labels or notification.common_labels
    ends = [a.ends_at for a in notification.alerts if a.ends_at]
    duration = None
    if status == "resolved" and ends:
        duration = format_duration(max(ends) - min(a.starts_at for a in notification.alerts))
    group_url = None
    if am_url:
        group_url = safe_url(f"{am_url.rstrip('/')}/#/alerts?filter={matcher_filter(group)}")
        if group_url is not None and len(group_url) > _MAX_GROUP_URL:
            group_url = None  # huge group labels: a link no platform keeps (and that would burst a Teams card)
    return GroupView(
        status=status,
        STATUS=status.upper(),
        title=names.pop() if len(names) == 1 else f"{len(views)} alerts",
        severity=severity,
        colour=colour,
        colour_hex=f"#{colour:06X}",
        emoji=_emoji(status, severity),
        firing_count=len(notification.firing),
        resolved_count=len(notification.resolved),
        truncated_alerts=notification.truncated_alerts,
        receiver=notification.receiver,
        group_labels=dict(group),
        alertmanager_url=safe_url(am_url),
        group_url=group_url,
        alerts=views,
        duration=duration,
        chart_url=safe_url(extras.chart_url) if extras.chart_url else None,
        has_chart=extras.chart is not None,
    )
