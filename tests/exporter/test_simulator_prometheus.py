"""The real Prometheus scrapes the simulator with its Bearer token and sees the scenario's rates and quantiles."""

from __future__ import annotations

import asyncio
import shutil
import time

import aiohttp
import pytest

from exporter.simulator.app import create_app
from exporter.simulator.config import Settings
from exporter.simulator.scenarios import traffic

pytestmark = [
    pytest.mark.realbin,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus not installed (make test installs it)"),
]

TOKEN = "prom-sim-token-5d4c"
SPEED = 60.0


async def _query(session: aiohttp.ClientSession, base: str, expr: str) -> dict[str, float]:
    async with session.get(f"{base}/api/v1/query", params={"query": expr}) as r:
        body = await r.json()
    assert body["status"] == "success", body
    return {item["metric"].get("model", ""): float(item["value"][1]) for item in body["data"]["result"]}


async def test_prometheus_scrapes_the_simulator(aiohttp_server, prometheus_factory):
    sim = await aiohttp_server(create_app(Settings(token=TOKEN, speed=SPEED, scenario="latency-spike", series=110)))
    config = f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: llm-proxy-sim
    authorization: {{credentials: {TOKEN}}}
    static_configs: [{{targets: ["127.0.0.1:{sim.port}"]}}]
"""
    prom = prometheus_factory(config)
    p95_expr = "histogram_quantile(0.95, sum by (model, le) (rate(llm_response_latency_seconds_bucket[10s])))"
    rate_expr = "sum by (model) (rate(llm_requests_total[10s]))"
    deadline = time.monotonic() + 40
    async with aiohttp.ClientSession() as session:
        while True:
            up = await _query(session, prom.url, "up")
            p95 = await _query(session, prom.url, p95_expr)
            rates = await _query(session, prom.url, rate_expr)
            samples = await _query(session, prom.url, "scrape_samples_scraped")
            scrapes = (await _query(session, prom.url, "count_over_time(up[1m])")).get("", 0)
            # The 10s windows must lie wholly after the first scrape, or rate() extrapolates from a partial one.
            if len(p95) == 3 and len(rates) == 3 and scrapes >= 14:
                break
            assert time.monotonic() < deadline, f"no data from Prometheus: up={up} p95={p95}\n{prom.logs()[-2000:]}"
            await asyncio.sleep(0.5)
    assert up == {"": 1.0}
    # 3 models x 17 live series, plus 110 padding series.
    assert samples[""] == 3 * (11 + 1 + 3 + 2) + 110
    assert p95["gpt-4o"] == pytest.approx(4.917, rel=0.05)
    for model in ("claude-3-5-sonnet", "llama-3-70b"):
        assert p95[model] == pytest.approx(0.914, rel=0.05)
    for model, rate in rates.items():
        assert rate == pytest.approx(traffic("latency-spike", model).requests_per_second * SPEED, rel=0.1)
