"""The sidecar's ratios, quantiles and rates agree with the real Prometheus scraping through it."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from exporter.app import create_app
from exporter.config import Window
from tests.exporter.fake_upstream import Traffic
from tests.exporter.support import sidecar_config

pytestmark = pytest.mark.realbin

WINDOW = "12s"
SCRAPE = "1s"  # twelve scrapes per window
MODELS = {"gpt-4o": 40.0, "claude-3-5-sonnet": 15.0}

PROMETHEUS_YML = """
global: {{scrape_interval: {scrape}, evaluation_interval: {scrape}}}
scrape_configs:
  - job_name: llm-auth-proxy
    authorization: {{credentials: sidecar-secret}}
    static_configs: [{{targets: ["{target}"]}}]
"""

# (sidecar gauge, the PromQL Prometheus evaluates itself over the relayed counters, tolerance)
PAIRS = [
    (
        "llm_request_failure_ratio",
        f"sum by (model) (rate(llm_requests_failed_total[{WINDOW}]))"
        f" / sum by (model) (rate(llm_requests_total[{WINDOW}]))",
        0.02,
    ),
    (
        "llm_tokens_per_request",
        f"sum by (model) (rate(llm_tokens_used_total[{WINDOW}])) / sum by (model) (rate(llm_requests_total[{WINDOW}]))",
        0.02,
    ),
    *[
        (
            f"llm_response_latency_p{p}_seconds",
            f"histogram_quantile({q}, sum by (model, le) (rate(llm_response_latency_seconds_bucket[{WINDOW}])))",
            0.02,
        )
        for p, q in (("50", 0.5), ("95", 0.95), ("99", 0.99))
    ],
    (
        "llm_slow_request_ratio",
        f'1 - sum by (model) (rate(llm_response_latency_seconds_bucket{{le="2.0"}}[{WINDOW}])) '
        f'/ sum by (model) (rate(llm_response_latency_seconds_bucket{{le="+Inf"}}[{WINDOW}]))',
        0.02,
    ),
    # Rates: the relayed counters are up to one poll old when scraped, so allow for that jitter.
    ("llm_requests_per_second", f"sum by (model) (rate(llm_requests_total[{WINDOW}]))", 0.05),
    ("llm_tokens_per_second", f"sum by (model) (rate(llm_tokens_used_total[{WINDOW}]))", 0.05),
]


async def query(session: aiohttp.ClientSession, base: str, promql: str) -> dict[str, float]:
    async with session.get(f"{base}/api/v1/query", params={"query": promql}) as resp:
        data = await resp.json()
    assert data["status"] == "success", data
    return {r["metric"].get("model", ""): float(r["value"][1]) for r in data["data"]["result"]}


async def test_agrees_with_real_prometheus(upstream, aiohttp_server, prometheus_factory):
    upstream.body = Traffic(dict(MODELS), failure_ratio=0.07).body
    config = sidecar_config(upstream, poll_interval=0.25, windows=(Window(WINDOW, 12.0),), baseline=3600.0)
    server = await aiohttp_server(create_app(config))
    prometheus = await asyncio.to_thread(
        prometheus_factory, PROMETHEUS_YML.format(scrape=SCRAPE, target=f"127.0.0.1:{server.port}")
    )

    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 60
        while True:  # until Prometheus holds a full window of scrapes
            counts = await query(session, prometheus.url, f"count_over_time(llm_requests_total[{WINDOW}])")
            if len(counts) == len(MODELS) and min(counts.values()) >= 12:
                break
            assert time.monotonic() < deadline, f"Prometheus never filled the window: {counts}"
            await asyncio.sleep(0.5)

        up = await query(session, prometheus.url, 'up{job="llm-auth-proxy"}')
        assert up == {"": 1.0}
        for gauge, promql, tolerance in PAIRS:
            ours = await query(session, prometheus.url, f'{gauge}{{window="{WINDOW}"}}')
            theirs = await query(session, prometheus.url, promql)
            assert set(ours) == set(MODELS) == set(theirs), (gauge, ours, theirs)
            for model in MODELS:
                assert ours[model] == pytest.approx(theirs[model], rel=tolerance), (gauge, model, ours, theirs)
