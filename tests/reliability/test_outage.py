"""An outage of the destination: it refuses connections, then answers 500; everything is delivered after.

Meanwhile the queue metrics show the backlog, and a real Prometheus scraping the bridge finds the stuck-queue
expression of `AlertBridgeDeliveryFailing` true, its 600 s threshold scaled to the outage's length (an outage
of ten minutes in the suite would cost ten minutes). `RELIABILITY_OUTAGE_SECONDS` sets each phase's length.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from tests.bridge.test_dispatch import eventually
from tests.realbin import run_prometheus
from tests.reliability.support import Sink, metric, post_many, run_bridge, unique_payload

pytestmark = pytest.mark.realbin

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "rules" / "alerts.yml"
PHASE = float(os.environ.get("RELIABILITY_OUTAGE_SECONDS", "5"))
COUNT = 50


def _stuck_queue_expr(threshold: float) -> str:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    [rule] = [
        r for r in rules if r.get("alert") == "AlertBridgeDeliveryFailing" and r["labels"]["cause"] == "stuck_queue"
    ]
    assert "> 600" in rule["expr"]
    return rule["expr"].replace("> 600", f"> {threshold:g}")


def _query(prometheus_url: str, expr: str) -> list[dict]:
    url = f"{prometheus_url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)["data"]["result"]


async def test_outage_then_everything_delivered(tmp_path, figures):
    sink = Sink(status=500)  # not started yet: connections are refused
    async with run_bridge(tmp_path, figures.texts, WEBHOOK_URL=sink.url(), BRIDGE_RETRY_MAX="1s") as bridge:
        config = (
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n  - job_name: alert-bridge\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{bridge.port}']}}]\n"
        )
        with run_prometheus(config, tmp_path / "prometheus") as prometheus:
            started = time.monotonic()
            answers = await post_many(bridge.url, [("/alerts", unique_payload(i)) for i in range(COUNT)])
            assert set(answers.values()) == {200}
            depths, ages = [], []
            while time.monotonic() - started < 2 * PHASE:
                if sink._runner is None and time.monotonic() - started >= PHASE:
                    await sink.start()  # now it answers 500
                depths.append(await metric(bridge.url, "alert_bridge_queue_depth", channel="webhook"))
                ages.append(await metric(bridge.url, "alert_bridge_oldest_pending_age_seconds", channel="webhook"))
                await asyncio.sleep(0.5)
            threshold = PHASE  # the 600 s of the rule, scaled to the outage
            await asyncio.sleep(1.5)  # one more scrape
            firing = _query(prometheus.url, _stuck_queue_expr(threshold))
            refused_then_500 = sink.answered
            sink.status = 200
            recovered = time.monotonic()
            await eventually(lambda: len(sink.groups()) == COUNT, timeout=30)
            drained = time.monotonic() - recovered
            attempts = await metric(bridge.url, "alert_bridge_delivery_attempts_total", channel="webhook")
            dead = await metric(bridge.url, "alert_bridge_dead_letters_total", channel="webhook")
            await eventually(lambda: _depth_zero(bridge.url), timeout=10)
    assert min(depths) == COUNT and max(depths) == COUNT, "the queue depth showed the backlog throughout"
    assert ages[-1] >= 2 * PHASE - 1 and ages == sorted(ages), "the oldest pending age grew throughout"
    assert firing and firing[0]["metric"]["channel"] == "webhook"
    assert dead == 0 and sum(1 for n in sink.groups().values() if n > 1) == 0
    figures.record("outage", "notifications pending when the outage began", COUNT)
    figures.record("outage", "connections refused, then HTTP 500", f"{PHASE:g} s, then {PHASE:g} s")
    figures.record("outage", "500 answers during the second phase", refused_then_500)
    figures.record("outage", "alert_bridge_queue_depth during the outage (min–max)", f"{min(depths):g}–{max(depths):g}")
    figures.record("outage", "alert_bridge_oldest_pending_age_seconds at the end", f"{ages[-1]:.1f}")
    figures.record(
        "outage", f"stuck-queue expression, threshold 600 s scaled to {threshold:g} s, in Prometheus", "true"
    )
    figures.record("outage", "delivered after the outage, distinct / dead letters", f"{COUNT} / {dead:g}")
    figures.record("outage", "time to drain after recovery", f"{drained:.1f} s")
    figures.record("outage", "send attempts in all", f"{attempts:g}")


async def _depth_zero(url: str) -> bool:
    return await metric(url, "alert_bridge_queue_depth", channel="webhook") == 0
