"""The sidecar over HTTP against fake upstreams: relay, auth, bad upstreams, fan-in, gzip, health."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import logging
import math
import subprocess

import pytest

from exporter.app import create_app
from exporter.keys import AppKeys
from exporter.pipeline import build_version
from tests.exporter.fake_upstream import Traffic, exposition
from tests.exporter.support import AUTH, assert_families_once, samples, sidecar_config, value

UPSTREAM_BODY = (
    exposition(
        {
            "gpt-4o": {
                "requests": 100.0,
                "failed": 5.0,
                "prompt": 3000.0,
                "completion": 1000.0,
                "buckets": [10.0, 30.0, 50.0, 70.0, 90.0, 97.0, 99.0, 100.0, 100.0],
            },
        }
    )
    + b'# HELP proxy_build_info x\n# TYPE proxy_build_info gauge\nproxy_build_info{version="1"} 1\n'
)


async def scrape_text(client, headers=AUTH) -> str:
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 200
    return await resp.text()


async def test_relayed_bytes_equal_upstream_bytes(upstream, sidecar):
    upstream.body = UPSTREAM_BODY
    client, _ = await sidecar(sidecar_config(upstream))
    resp = await client.get("/metrics", headers=AUTH)
    body = await resp.read()
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert body.startswith(UPSTREAM_BODY)
    own = body[len(UPSTREAM_BODY) :].decode()
    assert "llm_exporter_upstream_up" in own
    assert "llm_requests_total" not in own  # the relayed family appears once, from the upstream only
    assert_families_once(body.decode())


async def test_upstream_token_and_accept_header_sent(upstream, sidecar):
    upstream.body = UPSTREAM_BODY
    await sidecar(sidecar_config(upstream))
    sent = upstream.requests[-1]
    assert sent["Authorization"] == "Bearer upstream-secret"
    assert sent["Accept"] == "text/plain;version=0.0.4"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-header"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
        pytest.param({"Authorization": "Basic c2lkZWNhci1zZWNyZXQ="}, id="wrong-scheme"),
        pytest.param({"Authorization": "Bearer sidecar-secretX"}, id="longer-token"),
    ],
)
async def test_own_token_required(upstream, sidecar, headers):
    upstream.body = UPSTREAM_BODY
    client, _ = await sidecar(sidecar_config(upstream))
    resp = await client.get("/metrics", headers=headers)
    assert resp.status == 401
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    text = await resp.text()
    assert "sidecar-secret" not in text and "llm_" not in text


async def test_open_without_token(upstream, sidecar):
    upstream.body = UPSTREAM_BODY
    client, _ = await sidecar(sidecar_config(upstream, token=None))
    assert "llm_requests_total" in await scrape_text(client, headers={})


def _bad_upstream(kind: str):
    def apply(up):
        if kind == "down":
            up.status = 200
            return "connection"
        if kind == "garbage":
            up.body = b"<html><body>Bad gateway</body></html>\n"
            return "invalid"
        if kind == "garbage-text":
            up.body = UPSTREAM_BODY + b"this is not { an exposition\n"
            return "invalid"
        if kind == "json":
            up.body, up.content_type = b'{"requests": 1}', "application/json"
            return "invalid"
        if kind == "timeout":
            up.delay = 3.0
            return "timeout"
        if kind == "oversized":
            up.body = UPSTREAM_BODY + b"# " + b"x" * 5000 + b"\n"
            return "too_large"
        if kind == "401":
            up.token = "rotated"
            return "http_401"
        if kind == "5xx":
            up.status = 503
            return "http_5xx"
        raise AssertionError(kind)

    return apply


@pytest.mark.parametrize("kind", ["down", "garbage", "garbage-text", "json", "timeout", "oversized", "401", "5xx"])
async def test_bad_upstream_still_answers_with_health(upstream, sidecar, kind):
    upstream.body = UPSTREAM_BODY
    client, poller = await sidecar(sidecar_config(upstream, max_body=len(UPSTREAM_BODY) + 1000, upstream_timeout=0.5))
    first = samples(await scrape_text(client))
    assert value(first, "llm_exporter_upstream_up", upstream=upstream.label) == 1.0
    reason = _bad_upstream(kind)(upstream)
    if kind == "down":
        await upstream.close()
    await poller.poll_once()
    resp = await client.get("/metrics", headers={**AUTH, "X-Prometheus-Scrape-Timeout-Seconds": "2"})
    assert resp.status == 200
    text = await resp.text()
    parsed = samples(text)
    assert value(parsed, "llm_exporter_upstream_up", upstream=upstream.label) == 0.0
    assert value(parsed, "llm_exporter_upstream_scrape_errors_total", upstream=upstream.label, reason=reason) == 1.0
    assert value(parsed, "llm_exporter_upstream_last_success_timestamp_seconds", upstream=upstream.label) > 0
    assert "llm_requests_total" not in text and "Bad gateway" not in text and "not { an" not in text
    assert "proxy_build_info" not in text  # no stale or partial upstream text is relayed
    assert not any(math.isnan(v) or math.isinf(v) for v in parsed.values())
    ready = await client.get("/readyz")
    assert ready.status == 200  # the last success is within three poll intervals


async def test_upstream_down_from_the_start(upstream_factory, sidecar):
    up = await upstream_factory()
    await up.close()
    client, _ = await sidecar(sidecar_config(up))
    parsed = samples(await scrape_text(client))
    assert value(parsed, "llm_exporter_upstream_up", upstream=up.label) == 0.0
    assert value(parsed, "llm_exporter_upstream_last_success_timestamp_seconds", upstream=up.label) == 0.0
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


async def test_recovers_after_failure(upstream, sidecar):
    upstream.body = UPSTREAM_BODY
    client, poller = await sidecar(sidecar_config(upstream))
    upstream.status = 500
    await poller.poll_once()
    upstream.status = 200
    await poller.poll_once()
    text = await scrape_text(client)
    assert text.startswith(UPSTREAM_BODY.decode())
    assert value(samples(text), "llm_exporter_upstream_up", upstream=upstream.label) == 1.0


async def test_fan_in_of_two_upstreams(upstream_factory, sidecar):
    a, b = await upstream_factory(), await upstream_factory()
    a.body = UPSTREAM_BODY
    b.body = exposition(
        {
            "claude-3-5-sonnet": {
                "requests": 7.0,
                "failed": 1.0,
                "prompt": 70.0,
                "completion": 20.0,
                "buckets": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 7.0, 7.0],
            },
            "gpt-4o": {
                "requests": 3.0,
                "failed": 0.0,
                "prompt": 30.0,
                "completion": 10.0,
                "buckets": [0.0, 0.0, 1.0, 1.0, 2.0, 3.0, 3.0, 3.0, 3.0],
            },
        }
    )
    b.body += b'# HELP other_metric x\n# TYPE other_metric gauge\nother_metric{upstream="mine"} 2\n'
    client, _ = await sidecar(sidecar_config(a, b))
    text = await scrape_text(client)
    assert_families_once(text)
    parsed = samples(text)
    assert value(parsed, "llm_requests_total", model="gpt-4o", upstream=a.label) == 100.0
    assert value(parsed, "llm_requests_total", model="gpt-4o", upstream=b.label) == 3.0
    assert value(parsed, "llm_requests_total", model="claude-3-5-sonnet", upstream=b.label) == 7.0
    assert (
        value(parsed, "llm_response_latency_seconds_bucket", model="claude-3-5-sonnet", le="+Inf", upstream=b.label)
        == 7.0
    )
    assert value(parsed, "proxy_build_info", version="1", upstream=a.label) == 1.0
    assert value(parsed, "other_metric", exported_upstream="mine", upstream=b.label) == 2.0
    assert value(parsed, "llm_exporter_upstream_up", upstream=a.label) == 1.0
    assert value(parsed, "llm_exporter_upstream_up", upstream=b.label) == 1.0
    assert "/metrics" not in text  # the upstream label is host:port, never the URL


async def test_fan_in_with_one_upstream_down(upstream_factory, sidecar):
    a, b = await upstream_factory(), await upstream_factory()
    a.body, b.body = UPSTREAM_BODY, b"garbage garbage\n"
    client, _ = await sidecar(sidecar_config(a, b))
    parsed = samples(await scrape_text(client))
    assert value(parsed, "llm_requests_total", model="gpt-4o", upstream=a.label) == 100.0
    assert value(parsed, "llm_exporter_upstream_up", upstream=b.label) == 0.0
    assert value(parsed, "llm_exporter_upstream_scrape_errors_total", upstream=b.label, reason="invalid") == 1.0


async def test_upstream_family_with_our_name_is_left_out(upstream, sidecar):
    upstream.body = UPSTREAM_BODY + (
        b"# HELP llm_exporter_upstream_up theirs\n# TYPE llm_exporter_upstream_up gauge\n"
        b'llm_exporter_upstream_up{upstream="deeper:1"} 1\n'
    )
    client, _ = await sidecar(sidecar_config(upstream))
    text = await scrape_text(client)
    assert_families_once(text)
    parsed = samples(text)
    assert value(parsed, "llm_exporter_upstream_up", upstream="deeper:1") is None
    assert value(parsed, "llm_exporter_upstream_up", upstream=upstream.label) == 1.0
    assert value(parsed, "llm_exporter_relay_families_dropped", family="llm_exporter_upstream_up") == 1.0
    assert value(parsed, "llm_requests_total", model="gpt-4o") == 100.0


async def test_gzip_when_asked(upstream, sidecar):
    upstream.body = UPSTREAM_BODY
    client, _ = await sidecar(sidecar_config(upstream))
    resp = await client.get("/metrics", headers={**AUTH, "Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    raw = await resp.read()
    assert gzip.decompress(raw).startswith(UPSTREAM_BODY)
    plain = await client.get("/metrics", headers={**AUTH, "Accept-Encoding": "identity"}, auto_decompress=False)
    assert "Content-Encoding" not in plain.headers


async def test_derived_metrics_appear_with_traffic(upstream, sidecar):
    traffic = Traffic({"gpt-4o": 50.0, "llama-3-70b": 10.0})
    upstream.body = traffic.body
    client, poller = await sidecar(sidecar_config(upstream))
    await asyncio.sleep(0.2)
    await poller.poll_once()
    parsed = samples(await scrape_text(client))
    for model in ("gpt-4o", "llama-3-70b"):
        ratio = value(parsed, "llm_request_failure_ratio", model=model, window="2m")
        assert ratio == pytest.approx(0.1, rel=1e-6)
        assert value(parsed, "llm_tokens_per_request", model=model, window="5m") == pytest.approx(400.0)
        assert value(parsed, "llm_slow_request_ratio", model=model, window="2m") == pytest.approx(0.1)
    rps = value(parsed, "llm_requests_per_second", model="gpt-4o", window="2m")
    assert rps == pytest.approx(50.0, rel=0.25)  # wall-clock spans in a test are only roughly the server's


async def test_promtool_check_metrics_is_clean(upstream, sidecar, tmp_path):
    traffic = Traffic({"gpt-4o": 50.0})
    upstream.body = traffic.body
    prices = tmp_path / "prices.yml"
    prices.write_text("models: {other: {prompt: 1, completion: 2}}\n")
    from exporter.prices import load_prices

    config = sidecar_config(upstream, prices=load_prices(prices), latency_threshold=1.5, daily_budget_usd=250.0)
    client, poller = await sidecar(config)
    await asyncio.sleep(0.1)
    await poller.poll_once()
    text = await scrape_text(client)
    assert "llm_response_latency_p95_seconds" in text and "llm_exporter_unpriced_tokens_total" in text
    assert "llm_daily_budget_usd" in text
    result = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == b"" and result.stderr.strip() == b""


async def test_no_secret_in_logs_metrics_or_pages(upstream, sidecar, caplog):
    caplog.set_level(logging.DEBUG)
    upstream.body = UPSTREAM_BODY
    client, poller = await sidecar(sidecar_config(upstream))
    upstream.token = "rotated"
    await poller.poll_once()
    upstream.status = 500
    await poller.poll_once()
    pages = [
        await scrape_text(client),
        await (await client.get("/readyz")).text(),
        await (await client.get("/")).text(),
        await (await client.get("/metrics")).text(),
    ]
    everything = "\n".join(pages) + caplog.text
    assert "upstream scrape failed" in caplog.text
    for secret in ("upstream-secret", "sidecar-secret"):
        assert secret not in everything


async def test_index_and_health(upstream, sidecar):
    upstream.body = UPSTREAM_BODY
    client, _ = await sidecar(sidecar_config(upstream))
    page = await client.get("/")
    assert page.status == 200 and 'href="metrics"' in await page.text()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["ready"] is True


async def test_first_scrape_answers_within_the_scrape_timeout(upstream, aiohttp_client):
    upstream.body = UPSTREAM_BODY
    upstream.delay = 3.0  # the first poll is still running when Prometheus scrapes
    client = await aiohttp_client(create_app(sidecar_config(upstream, upstream_timeout=5.0)))
    resp = await client.get("/metrics", headers={**AUTH, "X-Prometheus-Scrape-Timeout-Seconds": "0.6"})
    assert resp.status == 200
    assert client.app[AppKeys.POLLER].exposition is None  # answered without waiting for the slow poll
    parsed = samples(await resp.text())
    assert value(parsed, "llm_exporter_upstream_up", upstream=upstream.label) == 0.0
    assert value(parsed, "llm_exporter_build_info", version=build_version()) == 1.0


async def test_outbound_scrape_goes_through_http_proxy_from_environment(upstream, sidecar, monkeypatch):
    # The fake upstream doubles as the forward proxy: aiohttp routes the absolute-form request by its path.
    upstream.body = UPSTREAM_BODY
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{upstream.port}")
    monkeypatch.setenv("NO_PROXY", "localhost")
    config = dataclasses.replace(sidecar_config(upstream), upstream_urls=("http://llm-proxy.invalid:8000/metrics",))
    client, _ = await sidecar(config)
    text = await scrape_text(client)
    assert text.startswith(UPSTREAM_BODY.decode())
    assert upstream.requests[-1]["Host"] == "llm-proxy.invalid:8000"
    assert value(samples(text), "llm_exporter_upstream_up", upstream="llm-proxy.invalid:8000") == 1.0


async def test_daily_budget_gauge_only_when_set(upstream, sidecar):
    upstream.body = UPSTREAM_BODY
    client, poller = await sidecar(sidecar_config(upstream, daily_budget_usd=250.0))
    await poller.poll_once()
    assert value(samples(await scrape_text(client)), "llm_daily_budget_usd") == 250.0
    client, poller = await sidecar(sidecar_config(upstream))
    await poller.poll_once()
    assert "llm_daily_budget_usd" not in await scrape_text(client)
