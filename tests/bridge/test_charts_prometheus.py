"""Charts and firing history against a real Prometheus scraping the proxy simulator during a failure burst."""

from __future__ import annotations

import asyncio
import io
import shutil
import time
from datetime import UTC, datetime
from urllib.parse import quote

import aiohttp
import pytest
from PIL import Image

from bridge.insight.service import Insight
from bridge.metrics import BridgeMetrics
from bridge.payload import parse_notification
from exporter.simulator.app import create_app
from exporter.simulator.config import Settings
from tests.fakes.payloads import alert, group

pytestmark = [
    pytest.mark.realbin,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed (make test installs it)"),
]

TOKEN = "chart-sim-token"
RATIO = "sum by (model) (rate(llm_requests_failed_total[5s])) / sum by (model) (rate(llm_requests_total[5s]))"
EXPR = f"{RATIO} > 0.2"
THRESHOLD_RGB = (0xD3, 0x2F, 0x2F)


async def _firing(session: aiohttp.ClientSession, base: str) -> bool:
    async with session.get(f"{base}/api/v1/query", params={"query": 'ALERTS{alertstate="firing"}'}) as r:
        return bool((await r.json())["data"]["result"])


def _threshold_pixels(png: bytes) -> int:
    colours = Image.open(io.BytesIO(png)).convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(count for count, colour in colours if colour == THRESHOLD_RGB)


async def test_chart_and_firing_count_from_the_simulators_data(aiohttp_server, prometheus_factory, tmp_path):
    sim = await aiohttp_server(create_app(Settings(token=TOKEN, speed=60.0, scenario="failure-burst")))
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n  - name: t\n    rules:\n"
        f"      - alert: LLMHighFailureRate\n        expr: '{EXPR}'\n        labels: {{severity: critical}}\n"
    )
    prom = prometheus_factory(
        f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: ["{rules}"]
scrape_configs:
  - job_name: llm-proxy-sim
    authorization: {{credentials: {TOKEN}}}
    static_configs: [{{targets: ["127.0.0.1:{sim.port}"]}}]
"""
    )
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 40
        while not await _firing(session, prom.url):
            assert time.monotonic() < deadline, prom.logs()[-2000:]
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)  # a few more points on the chart
        firing = alert(model="gpt-4o")
        # The address in generatorURL is the payload's: only its expression is used.
        firing["generatorURL"] = f"http://prometheus.invalid:9090/graph?g0.expr={quote(EXPR)}&g0.tab=1"
        firing["labels"] = {"alertname": "LLMHighFailureRate", "severity": "critical", "model": "gpt-4o",
                            "job": "llm-proxy-sim", "instance": f"127.0.0.1:{sim.port}"}  # fmt: skip
        firing["startsAt"] = datetime.now(UTC).isoformat()
        notification = parse_notification(group([firing]))
        metrics = BridgeMetrics()
        insight = Insight(session, metrics, query_url=prom.url, public_url=None, data_dir=tmp_path, timeout=20.0)
        insight.start()
        try:
            first = await insight.enrich(notification, 1)
            later = await insight.enrich(notification, 2)
        finally:
            await insight.close()
    png = first.extras.chart
    assert png is not None and Image.open(io.BytesIO(png)).format == "PNG"
    assert _threshold_pixels(png) > 300
    # Each notification asks again. The picture may be pixel-identical: a 15 s step over an hour moves
    # less than a pixel in a few seconds, and the simulator's burst holds a steady ratio.
    assert later.extras.chart is not None
    assert first.extras.fired == {firing["fingerprint"]: 1}
    assert metrics.registry.get_sample_value("alert_bridge_chart_failures_total", {"reason": "query"}) == 0
