"""prometheus.yml: promtool check config, its jobs, and the real Prometheus scraping a sidecar and running the rules."""

from __future__ import annotations

import asyncio
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.realbin import free_port, prometheus_argv, require_binary, run_process, wait_http

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROM_DIR / "prometheus.yml"
MODELS = ("gpt-4o", "claude-3-5-sonnet", "llama-3-70b")


def _copy_deploy(dest: Path, token: str | None) -> Path:
    """deploy/prometheus (config and rules) copied to `dest`, with the token file beside it when given."""
    shutil.copytree(PROM_DIR, dest, ignore=shutil.ignore_patterns("secrets", "tests"))
    if token is not None:
        (dest / "secrets").mkdir()
        (dest / "secrets" / "exporter_token").write_text(token + "\n")
    return dest / "prometheus.yml"


def test_promtool_check_config_is_clean(tmp_path: Path):
    config = _copy_deploy(tmp_path / "prometheus", "t0ken")
    result = subprocess.run(
        [require_binary("promtool"), "check", "config", str(config)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 15 rules found" in result.stdout
    assert "SUCCESS: 7 rules found" in result.stdout


def test_promtool_check_config_needs_the_token_file(tmp_path: Path):
    config = _copy_deploy(tmp_path / "prometheus", None)
    result = subprocess.run(
        [require_binary("promtool"), "check", "config", str(config)], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "secrets/exporter_token" in result.stdout + result.stderr


def test_jobs_targets_and_auth():
    config = yaml.safe_load(CONFIG.read_text())
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["rule_files"] == ["rules/*.yml"]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {name: job["static_configs"][0]["targets"] for name, job in jobs.items()}
    assert targets == {
        "llm-auth-proxy": ["llm-exporter:9470"],
        "prometheus": ["localhost:9090"],
        "alertmanager": ["alertmanager:9093"],
        "alert-bridge": ["alert-bridge:9095"],
    }
    assert jobs["llm-auth-proxy"]["authorization"] == {"type": "Bearer", "credentials_file": "secrets/exporter_token"}
    assert "authorization" not in jobs["alert-bridge"]


# --- the real binary -------------------------------------------------------------------------------------------

# Per request: 50% in (0.25, 0.5], 40% in (0.5, 1], 10% in (1, 2] -> p95 = 1 + (0.95 - 0.9) / 0.1 = 1.5 s.
_BUCKETS = (("0.1", 0), ("0.25", 0), ("0.5", 0.5), ("1", 0.9), ("2", 1.0), ("5", 1.0), ("10", 1.0), ("30", 1.0))


class _FakeSidecar:
    """The proxy's four families, growing at constant rates, behind a Bearer token: what the sidecar relays."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.started = time.monotonic()
        self.auth_seen: list[str] = []

    def exposition(self) -> str:
        t = time.monotonic() - self.started
        lines = []
        for i, model in enumerate(MODELS, start=1):
            requests = 10 * i * t
            lines += [
                f'llm_requests_total{{model="{model}"}} {requests}',
                f'llm_requests_failed_total{{model="{model}",reason="timeout"}} {requests * 0.1}',
                f'llm_tokens_used_total{{model="{model}",type="prompt"}} {requests * 300}',
                f'llm_tokens_used_total{{model="{model}",type="completion"}} {requests * 200}',
            ]
            lines += [
                f'llm_response_latency_seconds_bucket{{model="{model}",le="{le}"}} {requests * f}' for le, f in _BUCKETS
            ]
            lines += [
                f'llm_response_latency_seconds_bucket{{model="{model}",le="+Inf"}} {requests}',
                f'llm_response_latency_seconds_sum{{model="{model}"}} {requests * 0.7}',
                f'llm_response_latency_seconds_count{{model="{model}"}} {requests}',
            ]
        lines.append('llm_exporter_upstream_up{upstream="llm-proxy-sim:8000"} 1')
        return "\n".join(lines) + "\n"

    async def metrics(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.auth_seen.append(auth)
        if auth != f"Bearer {self.token}":
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        return web.Response(text=self.exposition(), content_type="text/plain")


def _render(config: Path, ports: dict[str, int]) -> None:
    """Targets → loopback ports, intervals → 1s; everything else (rule files, token file) as shipped."""
    text = config.read_text()
    for address, port in ports.items():
        text = text.replace(address, f"127.0.0.1:{port}")
    parsed = yaml.safe_load(text)
    parsed["global"].update(scrape_interval="1s", evaluation_interval="1s", scrape_timeout="1s")
    config.write_text(yaml.safe_dump(parsed, sort_keys=False))


def _prometheus(config: Path, workdir: Path, port: int):
    """Run Prometheus from `workdir`, which is NOT the config's directory: relative paths must resolve there."""
    workdir.mkdir()
    argv = prometheus_argv(config, workdir / "data", port)
    return run_process(argv, workdir / "prometheus.log", f"http://127.0.0.1:{port}/-/ready", cwd=workdir)


async def _query(session: aiohttp.ClientSession, url: str, promql: str) -> dict[str, float]:
    async with session.get(f"{url}/api/v1/query", params={"query": promql}) as r:
        body = await r.json()
    assert body["status"] == "success", body
    return {s["metric"].get("model", ""): float(s["value"][1]) for s in body["data"]["result"]}


async def test_real_prometheus_scrapes_with_the_token_and_evaluates_every_rule(tmp_path: Path, aiohttp_server):
    token = secrets.token_urlsafe(24)
    sidecar = _FakeSidecar(token)
    app = web.Application()
    app.router.add_get("/metrics", sidecar.metrics)
    server = await aiohttp_server(app)

    port, closed = free_port(), free_port()
    config = _copy_deploy(tmp_path / "conf", token)
    _render(
        config,
        {
            "llm-exporter:9470": server.port,
            "localhost:9090": port,
            "alertmanager:9093": closed,
            "alert-bridge:9095": closed,
        },
    )
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "run" / "prometheus.log"
    with _prometheus(config, tmp_path / "run", port) as proc:
        await asyncio.to_thread(wait_http, f"{url}/-/ready", 15.0, proc)
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            rates: dict[str, float] = {}
            while time.monotonic() < deadline and len(rates) < len(MODELS):
                await asyncio.sleep(0.5)
                rates = await _query(session, url, "llm:requests:rate5m")
            assert len(rates) == len(MODELS), f"no recording-rule results; log:\n{log.read_text()[-3000:]}"
            await asyncio.sleep(1.5)  # one more evaluation round, so that every group has run with data

            failure = await _query(session, url, "llm:failure_ratio:rate5m")
            p95 = await _query(session, url, "llm:latency_seconds:p95_5m")
            per_request = await _query(session, url, "llm:tokens_per_request:rate5m")
            async with session.get(f"{url}/api/v1/rules") as r:
                groups = (await r.json())["data"]["groups"]
            async with session.get(f"{url}/api/v1/targets") as r:
                targets = (await r.json())["data"]["activeTargets"]

    assert set(sidecar.auth_seen) == {f"Bearer {token}"}
    (sidecar_target,) = [t for t in targets if t["labels"]["job"] == "llm-auth-proxy"]
    assert sidecar_target["health"] == "up", sidecar_target["lastError"]

    # A few seconds of data in a 5m window: rate() is far below the true rate, but the same for every model.
    assert rates["gpt-4o"] > 0
    assert rates["llama-3-70b"] / rates["gpt-4o"] == pytest.approx(3, rel=0.01)
    assert failure == pytest.approx(dict.fromkeys(MODELS, 0.1), rel=1e-6)
    assert p95 == pytest.approx(dict.fromkeys(MODELS, 1.5), rel=1e-6)
    assert per_request == pytest.approx(dict.fromkeys(MODELS, 500), rel=1e-6)

    rules = [rule for group in groups for rule in group["rules"]]
    assert len(rules) == 22
    assert [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok"] == []
    states = {r["name"]: r.get("state") for r in rules if r["type"] == "alerting"}
    assert states["Watchdog"] in ("pending", "firing")
    # Healthy constant traffic: none of the traffic alerts is even pending.
    quiet = ("LLMHighFailureRate", "LLMHighLatency", "LLMRequestSurge", "LLMTokenSurge", "LLMProxyDown")
    for name in (*quiet, "LLMSpendSurge", "LLMDailyBudgetExceeded"):
        assert states[name] == "inactive"
