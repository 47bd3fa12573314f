"""Charts and firing history for a notification, from the configured Prometheus, within a time budget.

The dispatcher asks once per (notification, channel); the work is done once per notification and shared.
Whatever is not ready within the budget is left out: a message never waits longer for its chart.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from datetime import tzinfo
from pathlib import Path

import aiohttp

from bridge.insight.chart import render_chart
from bridge.insight.prometheus import PrometheusError, Series, query_range
from bridge.insight.promql import expression_from, split_threshold
from bridge.insight.store import ChartStore
from bridge.metrics import BridgeMetrics
from bridge.model import Alert, Extras, Notification
from bridge.render.context import alert_order

__all__ = ["Insight", "count_firings"]

log = logging.getLogger("bridge.insight")

CHART_WINDOW = 3600.0
CHART_STEP = 15.0
HISTORY_WINDOW = 24 * 3600.0
HISTORY_STEP = 60.0
_MAX_ALERTS = 50  # firing counts for at most this many alerts of a group
_CACHE = 64  # notifications whose extras are kept for the other channels


def count_firings(points: list[tuple[float, float]], step: float) -> int:
    """Separate firing periods in an ALERTS series: a gap longer than 1.5 steps starts a new one."""
    times = sorted(t for t, _ in points)
    return sum(1 for i, t in enumerate(times) if i == 0 or t - times[i - 1] > 1.5 * step)


def _matches(series: Series, alert: Alert) -> bool:
    """An ALERTS (or alerting) series belongs to the alert when each of its labels is the alert's too."""
    return all(alert.labels.get(k) == v for k, v in series.labels.items() if k not in ("__name__", "alertstate"))


class Insight:
    """Extras for notifications; inert (returns them unchanged) without a Prometheus URL."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        metrics: BridgeMetrics,
        *,
        query_url: str | None,
        public_url: str | None,
        data_dir: Path,
        timeout: float = 3.0,
        zone: tzinfo | None = None,
    ) -> None:
        self.session = session
        self.metrics = metrics
        self.query_url = query_url
        self.public_url = public_url.rstrip("/") if public_url else None
        self.timeout = timeout
        self.zone = zone
        self.store = ChartStore(data_dir)
        self._tasks: OrderedDict[int, tuple[asyncio.Task[Extras], float]] = OrderedDict()
        self._counted: set[int] = set()  # failures are counted once per notification, not per channel
        # One drawing thread: charts are CPU-bound and the bridge must not take every core for them.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="charts")
        self._warm: asyncio.Future[None] | None = None
        self._last_prune = 0.0

    def start(self) -> None:
        """Import matplotlib and build its font cache now, in the drawing thread, not on the first alert."""
        if self.query_url:
            loop = asyncio.get_running_loop()
            self._warm = loop.run_in_executor(self._executor, render_chart, [], 1.0, None, "warm-up", None)

    async def close(self) -> None:
        for task, _ in self._tasks.values():
            task.cancel()
        await asyncio.gather(*(t for t, _ in self._tasks.values()), return_exceptions=True)
        if self._warm is not None:
            with contextlib.suppress(Exception):
                await self._warm
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def enrich(self, notification: Notification, key: int) -> Notification:
        """`notification` with the extras ready within the budget (counted from the first ask for `key`)."""
        if not self.query_url:
            return notification
        if key not in self._tasks:
            task = asyncio.create_task(self._extras(notification), name=f"bridge-insight-{key}")
            self._tasks[key] = (task, time.monotonic() + self.timeout)
            while len(self._tasks) > _CACHE:
                gone, (old, _) = self._tasks.popitem(last=False)
                self._counted.discard(gone)
                if not old.done():
                    old.cancel()
        task, deadline = self._tasks[key]
        try:
            extras = await asyncio.wait_for(asyncio.shield(task), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            if key not in self._counted:
                self._counted.add(key)
                self.metrics.chart_failures.labels("timeout").inc()
                log.warning("chart and firing history not ready in time", extra={"notification": key})
            return notification
        except asyncio.CancelledError:
            if task.cancelled():
                return notification
            raise
        except Exception:  # a bug here must never hold a message back
            log.exception("chart and firing history failed", extra={"notification": key})
            if key not in self._counted:
                self._counted.add(key)
                self.metrics.chart_failures.labels("render").inc()
            return notification
        return dataclasses.replace(notification, extras=extras)

    async def _extras(self, notification: Notification) -> Extras:
        fired, chart = await asyncio.gather(self._fired(notification), self._chart(notification))
        chart_url = None
        if chart is not None and self.public_url:
            chart_id = await asyncio.get_running_loop().run_in_executor(self._executor, self._save, chart)
            chart_url = f"{self.public_url}/charts/{chart_id}.png"
        return Extras(chart=chart, chart_url=chart_url, fired=fired)

    def _save(self, png: bytes) -> str:
        if time.time() - self._last_prune > 3600:
            self._last_prune = time.time()
            self.store.prune()
        return self.store.save(png)

    async def _query(self, expr: str, window: float, step: float) -> list[Series] | None:
        assert self.query_url is not None
        end = time.time()
        try:
            # Past twice the budget nobody waits for the answer any more.
            limit = max(1.0, 2 * self.timeout)
            return await query_range(self.session, self.query_url, expr, end - window, end, step, limit)
        except PrometheusError as exc:
            self.metrics.chart_failures.labels("query").inc()
            log.warning("Prometheus query failed", extra={"error": str(exc)})
            return None

    async def _fired(self, notification: Notification) -> dict[str, int]:
        alerts = [a for a in notification.alerts if a.name][:_MAX_ALERTS]
        if not alerts:
            return {}
        names = "|".join(sorted({_quote_re(a.name) for a in alerts}))
        series = await self._query(f'ALERTS{{alertstate="firing",alertname=~"{names}"}}', HISTORY_WINDOW, HISTORY_STEP)
        if series is None:
            return {}
        out = {}
        for a in alerts:
            points = [p for s in series if _matches(s, a) for p in s.points]
            out[a.fingerprint] = count_firings(points, HISTORY_STEP)
        return out

    async def _chart(self, notification: Notification) -> bytes | None:
        firing = notification.firing
        if not firing:
            return None
        alert = min(firing, key=alert_order)  # the alert every message shows first
        expr = expression_from(alert.generator_url)
        if expr is None:
            return None
        drawn, threshold = split_threshold(expr)
        series = await self._query(drawn, CHART_WINDOW, CHART_STEP)
        if not series:
            return None
        mine = [s for s in series if _matches(s, alert)] or series
        if not any(s.points for s in mine):
            return None
        title = alert.name + "".join(f" {k}={alert.labels[k]}" for k in ("model", "instance") if k in alert.labels)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, render_chart, mine, threshold, alert.starts_at, title, self.zone
            )
        except Exception:
            self.metrics.chart_failures.labels("render").inc()
            log.exception("chart failed to draw")
            return None


def _quote_re(name: str) -> str:
    """An alert name as a literal inside a PromQL regex in double quotes."""
    escaped = "".join(f"\\\\{c}" if c in ".^$*+?()[]{}|\\" else c for c in name)
    return escaped.replace('"', '\\"')
