"""The bridge's own Prometheus metrics, in a registry per app."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CHART_FAILURE_REASONS", "REJECT_REASONS", "BridgeMetrics", "DeliverySeries"]

# Every rejection reason the intake can give, so their series exist (at zero) from the start.
REJECT_REASONS = ("unauthorized", "too_large", "bad_json", "bad_payload", "queue_full", "store_failed")

# Why a message went without its chart or firing count: Prometheus slow, unreachable or answering an error,
# or the chart failing to draw.
CHART_FAILURE_REASONS = ("timeout", "query", "render")

# Received → delivered spans seconds (healthy) to hours (an outage absorbed by the outbox).
_LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 21600, float("inf"))


@dataclass(frozen=True)
class DeliverySeries:
    """The series of one channel that every delivery touches."""

    attempts: Any
    delivered: Any
    latency: Any


class BridgeMetrics:
    """Counters, gauges and the latency histogram named in the project's metric list."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.received = Counter(
            "alert_bridge_notifications_received",
            "Notifications accepted, by route and status",
            ["route", "status"],
            registry=r,
        )
        self.rejected = Counter(
            "alert_bridge_notifications_rejected", "Requests refused at intake, by reason", ["reason"], registry=r
        )
        self.deliveries = Counter(
            "alert_bridge_deliveries", "Deliveries finished, by channel and result", ["channel", "result"], registry=r
        )
        self.attempts = Counter(
            "alert_bridge_delivery_attempts", "Send attempts (one per message part tried)", ["channel"], registry=r
        )
        self.queue_depth = Gauge(
            "alert_bridge_queue_depth", "Pending deliveries in the outbox", ["channel"], registry=r
        )
        self.oldest_age = Gauge(
            "alert_bridge_oldest_pending_age_seconds", "Age of the oldest pending delivery", ["channel"], registry=r
        )
        self.latency = Histogram(
            "alert_bridge_delivery_latency_seconds",
            "Time from receipt to delivery",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rate_limited = Counter(
            "alert_bridge_rate_limited", "Answers asking the bridge to slow down (429)", ["channel"], registry=r
        )
        self.dead_letters = Counter(
            "alert_bridge_dead_letters",
            "Deliveries given up, by channel and reason",
            ["channel", "reason"],
            registry=r,
        )
        self.truncations = Counter(
            "alert_bridge_truncations", "Messages sent cut or collapsed to fit the platform", ["channel"], registry=r
        )
        self.chart_failures = Counter(
            "alert_bridge_chart_failures",
            "Charts or firing counts not added to a message (it went without), by reason",
            ["reason"],
            registry=r,
        )
        self.superseded = Counter(
            "alert_bridge_superseded",
            "Queued deliveries replaced by a newer notification of the same group before being sent",
            ["channel"],
            registry=r,
        )
        self._delivery_series: dict[str, DeliverySeries] = {}
        for reason in REJECT_REASONS:
            self.rejected.labels(reason)
        for reason in CHART_FAILURE_REASONS:
            self.chart_failures.labels(reason)

    def init_routes(self, routes: Iterable[str]) -> None:
        """Start the received series of each known route at zero."""
        for route in routes:
            for status in ("firing", "resolved"):
                self.received.labels(route, status)

    def init_channels(self, channels: Iterable[str]) -> None:
        """Start every per-channel series of each configured channel at zero."""
        for name in channels:
            for result in ("delivered", "dead_lettered"):
                self.deliveries.labels(name, result)
            self.attempts.labels(name)
            self.queue_depth.labels(name)
            self.oldest_age.labels(name)
            self.latency.labels(name)
            self.rate_limited.labels(name)
            self.truncations.labels(name)
            self.superseded.labels(name)

    def delivery_series(self, channel: str) -> DeliverySeries:
        """Looked up once per channel: `labels()` checks the values and takes a lock on every call."""
        series = self._delivery_series.get(channel)
        if series is None:
            series = self._delivery_series[channel] = DeliverySeries(
                self.attempts.labels(channel),
                self.deliveries.labels(channel, "delivered"),
                self.latency.labels(channel),
            )
        return series

    def set_queue(self, stats: Mapping[str, tuple[int, float]], channels: Iterable[str]) -> None:
        """Queue depth and oldest age per channel from an outbox snapshot; configured channels absent are 0."""
        for name in set(channels) | set(stats):
            depth, oldest = stats.get(name, (0, 0.0))
            self.queue_depth.labels(name).set(depth)
            self.oldest_age.labels(name).set(oldest)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
