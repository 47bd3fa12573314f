"""The sidecar under a bad upstream: slow, flapping, garbage, a 100 MB body, a counter reset, an explosion of
label sets. The real `llm-exporter` process is scraped all along: every scrape is answered in time, errors
are counted by reason, memory stays under a stated bound, and no value is NaN, Inf or a negative rate.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time

import aiohttp
from aiohttp import web

from common.processes import free_port, memory_kib
from tests.bridge.test_dispatch import eventually
from tests.exporter.fake_upstream import Traffic, exposition

TOKEN = "sidecar-suite-token-93b1"
PHASE = 2.0  # seconds per upstream behaviour
SCRAPE_TIMEOUT = 1.0  # what the scraper announces in X-Prometheus-Scrape-Timeout-Seconds
MEMORY_BOUND_MB = 250
MAX_SERIES = 500
RATES = ("llm_requests_per_second", "llm_tokens_per_second")


class _Upstream:
    def __init__(self) -> None:
        self.mode = "normal"
        self.traffic = Traffic(rps={"gpt-4o": 5.0, "claude": 2.0})
        self.flip = False
        self.reset_at: float | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        mode = self.mode
        if mode == "slow":
            await asyncio.sleep(2.0)  # past the sidecar's upstream timeout
        if mode == "flapping":
            self.flip = not self.flip
            if self.flip:
                return web.Response(status=503, text="upstream error page")
        if mode == "garbage":
            return web.Response(body=b"\x00\xff{not an exposition\n" * 100, content_type="text/plain")
        if mode == "huge":  # 100 MB, streamed: the sidecar must stop reading at its cap
            resp = web.StreamResponse(headers={"Content-Type": "text/plain; version=0.0.4"})
            await resp.prepare(request)
            chunk = b"# " + b"x" * (1024 * 1024 - 3) + b"\n"
            try:
                for _ in range(100):
                    await resp.write(chunk)
            except (ConnectionResetError, aiohttp.ClientConnectionResetError):
                pass
            return resp
        if mode == "reset" and self.reset_at is None:  # the proxy restarted: counters start again, lower
            self.reset_at = time.monotonic()
            self.traffic = Traffic(rps={"gpt-4o": 5.0, "claude": 2.0})
        if mode == "explosion":
            models = {
                f"m{i}": {"requests": 10.0 * i, "failed": 1.0, "prompt": 5.0, "completion": 5.0, "buckets": [1.0] * 9}
                for i in range(5 * MAX_SERIES)
            }
            return web.Response(
                body=self.traffic.body() + exposition(models).split(b"\n", 2)[2], content_type="text/plain"
            )
        return web.Response(body=self.traffic.body(), content_type="text/plain")


async def test_sidecar_answers_every_scrape_under_a_bad_upstream(tmp_path, figures):
    upstream = _Upstream()
    app = web.Application()
    app.router.add_get("/metrics", upstream.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    up_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", up_port).start()
    port = free_port()
    env = {
        **os.environ,
        "LLM_PROXY_URL": f"http://127.0.0.1:{up_port}/metrics",
        "LLM_PROXY_TIMEOUT": "0.5",
        "EXPORTER_LISTEN": f"127.0.0.1:{port}",
        "EXPORTER_TOKEN": TOKEN,
        "EXPORTER_POLL_INTERVAL": "0.5",
        "EXPORTER_WINDOWS": "2s,5s",
        "EXPORTER_BASELINE": "10s",
        "EXPORTER_MAX_BODY": "16MiB",
        "EXPORTER_MAX_SERIES": str(MAX_SERIES),
    }
    log = tmp_path / "exporter.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "exporter", env=env, stdout=out, stderr=out)
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Prometheus-Scrape-Timeout-Seconds": str(SCRAPE_TIMEOUT)}
    durations: list[float] = []
    bad_values: list[str] = []
    peak_kib = 0
    try:
        async with aiohttp.ClientSession() as s:

            async def up() -> bool:
                try:
                    async with s.get(f"{url}/readyz") as r:
                        return r.status == 200
                except aiohttp.ClientError:
                    return False

            await eventually(up, timeout=20)
            for mode in ("normal", "slow", "flapping", "garbage", "huge", "normal", "reset", "explosion", "normal"):
                upstream.mode = mode
                end = time.monotonic() + PHASE
                while time.monotonic() < end:
                    start = time.monotonic()
                    async with s.get(f"{url}/metrics", headers=headers) as r:
                        assert r.status == 200
                        text = await r.text()
                    durations.append(time.monotonic() - start)
                    for line in text.splitlines():
                        if line.startswith("#") or not line:
                            continue
                        series, _, value = line.rpartition(" ")
                        v = float(value)
                        if math.isnan(v) or math.isinf(v) or (series.split("{")[0] in RATES and v < 0):
                            bad_values.append(line)
                    peak_kib = max(peak_kib, memory_kib(proc.pid).get("VmHWM", 0))
                    await asyncio.sleep(0.1)
            async with s.get(f"{url}/metrics", headers=headers) as r:
                final = await r.text()
    finally:
        proc.kill()
        await proc.wait()
        await runner.cleanup()
        figures.texts.append(log.read_text(errors="replace"))

    def total(name: str, **labels: str) -> float:
        out = 0.0
        for line in final.splitlines():
            series, _, value = line.rpartition(" ")
            if series.split("{")[0] == name and all(f'{k}="{v}"' in series for k, v in labels.items()):
                out += float(value)
        return out

    reasons = {r: total("llm_exporter_upstream_scrape_errors_total", reason=r) for r in ("timeout", "http_5xx")}
    reasons |= {r: total("llm_exporter_upstream_scrape_errors_total", reason=r) for r in ("invalid", "too_large")}
    assert all(n > 0 for n in reasons.values()), reasons
    assert total("llm_exporter_upstream_resets_total") > 0
    assert total("llm_exporter_series_dropped_total") > 0
    assert not bad_values, bad_values[:5]
    assert max(durations) < SCRAPE_TIMEOUT
    assert peak_kib / 1024 < MEMORY_BOUND_MB
    figures.record(
        "sidecar", f"upstream behaviours, {PHASE:g} s each", "normal, slow, flapping, garbage, 100 MB, reset, explosion"
    )
    figures.record("sidecar", "scrapes (all 200)", len(durations))
    figures.record("sidecar", "slowest scrape (announced timeout 1 s)", f"{max(durations) * 1000:.0f} ms")
    figures.record("sidecar", "errors by reason", ", ".join(f"{k} {v:g}" for k, v in reasons.items()))
    figures.record("sidecar", "counter resets seen", f"{total('llm_exporter_upstream_resets_total'):g}")
    figures.record(
        "sidecar",
        f"label sets folded past EXPORTER_MAX_SERIES={MAX_SERIES}",
        f"{total('llm_exporter_series_dropped_total'):g}",
    )
    figures.record("sidecar", f"peak resident memory (bound {MEMORY_BOUND_MB} MB)", f"{peak_kib / 1024:.0f} MB")
    figures.record("sidecar", "NaN, Inf or negative rates", len(bad_values))
