"""Alertmanager config: amtool checks, routing cases, and the real binary delivering to the bridge's paths."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web

from tests.realbin import alertmanager_argv, free_port, require_binary, run_process

ROOT = Path(__file__).resolve().parents[2]
AM_DIR = ROOT / "deploy" / "alertmanager"
CONFIG = AM_DIR / "alertmanager.yml"
ROUTE_CASES = yaml.safe_load((AM_DIR / "tests" / "routes.yml").read_text())["cases"]
ALERT_RULES = ROOT / "deploy" / "prometheus" / "rules" / "alerts.yml"
BRIDGE = "http://alert-bridge:9095"


def _amtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True, timeout=30)


def test_amtool_check_config_is_clean(tmp_path: Path):
    shutil.copy(CONFIG, tmp_path)
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "bridge_token").write_text("t0ken\n")
    result = _amtool("check-config", str(tmp_path / "alertmanager.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    "case", ROUTE_CASES, ids=[f"{c['labels']['alertname']}-{c['labels'].get('severity', 'none')}" for c in ROUTE_CASES]
)
def test_route(case: dict):
    labels = [f"{k}={v}" for k, v in case["labels"].items()]
    result = _amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={case['receiver']}", *labels
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.split() == [case["receiver"]]


def test_a_wrong_expectation_fails():
    # The route check above can fail: a critical alert is not routed to the warning receiver.
    result = _amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", "--verify.receivers=bridge-warning", "severity=critical"
    )
    assert result.returncode != 0


def test_every_alert_has_a_route_case():
    alerts = {r["alert"] for g in yaml.safe_load(ALERT_RULES.read_text())["groups"] for r in g["rules"]}
    assert alerts <= {c["labels"]["alertname"] for c in ROUTE_CASES}


def test_bridge_receivers_use_a_token_file_and_send_resolved():
    config = yaml.safe_load(CONFIG.read_text())
    hooks = {r["name"]: r.get("webhook_configs", []) for r in config["receivers"]}
    assert hooks["watchdog"] == [] and hooks["fallback"] == []  # filled in by stack.render from deploy/.env
    for severity in ("critical", "warning"):
        (hook,) = hooks[f"bridge-{severity}"]
        assert hook["url"] == f"{BRIDGE}/alerts/{severity}"
        assert hook["send_resolved"] is True
        assert 0 < hook["max_alerts"] <= 1000
        assert hook["http_config"]["authorization"] == {"type": "Bearer", "credentials_file": "secrets/bridge_token"}
    assert config["route"]["group_by"] == ["alertname", "model"]
    (inhibit,) = config["inhibit_rules"]
    assert inhibit["equal"] == ["job"]


# --- the real binary -------------------------------------------------------------------------------------------


class _Receiver:
    """A stand-in for the bridge: records every webhook (path, Authorization header, JSON body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.path, request.headers.get("Authorization", ""), await request.json()))
        return web.json_response({"status": "accepted"})

    def alerts(self, path: str) -> list[dict]:
        return [a for p, _, body in self.requests if p == path for a in body["alerts"]]


@pytest.fixture
async def receiver(aiohttp_server) -> tuple[_Receiver, str]:
    rec = _Receiver()
    app = web.Application()
    app.router.add_post("/alerts/{route}", rec.handle)
    server = await aiohttp_server(app)
    return rec, f"http://127.0.0.1:{server.port}"


def _render(bridge_url: str) -> str:
    """The shipped config with the bridge's address swapped and group timings shortened to 1s for the test."""
    config = yaml.safe_load(CONFIG.read_text())
    for route in [config["route"], *config["route"]["routes"]]:
        for key in ("group_wait", "group_interval"):
            if key in route:
                route[key] = "1s"
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = hook["url"].replace(BRIDGE, bridge_url)
    return yaml.safe_dump(config, sort_keys=False)


@contextlib.contextmanager
def _alertmanager(tmp_path: Path, bridge_url: str, token: str) -> Iterator[tuple[str, Path]]:
    """Run Alertmanager with the config in conf/ and the token in conf/secrets/, from a different working dir."""
    conf, cwd = tmp_path / "conf", tmp_path / "cwd"
    (conf / "secrets").mkdir(parents=True)
    cwd.mkdir()
    (conf / "alertmanager.yml").write_text(_render(bridge_url))
    (conf / "secrets" / "bridge_token").write_text(token + "\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "alertmanager.log"
    argv = alertmanager_argv(conf / "alertmanager.yml", tmp_path / "data", port)
    # cwd is NOT the config dir: `secrets/bridge_token` must be resolved against the config file's directory.
    with run_process(argv, log, f"{url}/-/ready", cwd=cwd):
        yield url, log


async def _post_alerts(am_url: str, alerts: list[dict]) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{am_url}/api/v2/alerts", json=alerts) as r:
        assert r.status == 200, await r.text()


async def _wait_for(check: Callable[[], bool], log: Path, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; Alertmanager log:\n{log.read_text(errors='replace')[-3000:]}")


def _alert(name: str, severity: str, **labels: str) -> dict:
    return {
        "labels": {"alertname": name, "severity": severity, **labels},
        "annotations": {"summary": f"{name} test", "runbook_url": f"docs/runbooks.md#{name.lower()}"},
    }


async def test_alerts_reach_the_bridge_by_severity_with_the_token(tmp_path: Path, receiver):
    rec, bridge_url = receiver
    token = secrets.token_urlsafe(24)
    with _alertmanager(tmp_path, bridge_url, token) as (am, log):
        critical = _alert("LLMHighFailureRate", "critical", job="proxy-a", model="gpt-4o")
        warning = _alert("LLMHighLatency", "warning", job="proxy-a", model="claude-3-5-sonnet")
        await _post_alerts(am, [critical, warning, _alert("Watchdog", "none")])
        await _wait_for(
            lambda: rec.alerts("/alerts/critical") and rec.alerts("/alerts/warning"), log, "firing notifications"
        )

        # Resolving the critical alert sends a resolved notification (send_resolved: true).
        critical["endsAt"] = datetime.now(UTC).isoformat()
        await _post_alerts(am, [critical])
        await _wait_for(lambda: any(a["status"] == "resolved" for a in rec.alerts("/alerts/critical")), log, "resolved")

    assert {auth for _, auth, _ in rec.requests} == {f"Bearer {token}"}
    assert {path for path, _, _ in rec.requests} == {"/alerts/critical", "/alerts/warning"}
    for _, _, body in rec.requests:
        assert body["version"] == "4"
        assert body["receiver"] in ("bridge-critical", "bridge-warning")
    assert {a["labels"]["alertname"] for a in rec.alerts("/alerts/critical")} == {"LLMHighFailureRate"}
    assert {a["labels"]["alertname"] for a in rec.alerts("/alerts/warning")} == {"LLMHighLatency"}
    assert rec.alerts("/alerts/critical")[0]["status"] == "firing"
    # Watchdog goes to the receiver that does nothing.
    assert all(a["labels"]["alertname"] != "Watchdog" for _, _, body in rec.requests for a in body["alerts"])


async def test_proxy_down_inhibits_traffic_alerts_of_the_same_job(tmp_path: Path, receiver):
    rec, bridge_url = receiver
    with _alertmanager(tmp_path, bridge_url, "t0ken") as (am, log):
        await _post_alerts(am, [_alert("LLMProxyDown", "critical", job="proxy-b", instance="sidecar-b:9470")])
        # One group (same alertname and model): the proxy-b alert is inhibited, the proxy-c one is not.
        await _post_alerts(
            am,
            [
                _alert("LLMHighLatency", "warning", job="proxy-b", model="gpt-4o"),
                _alert("LLMHighLatency", "warning", job="proxy-c", model="gpt-4o"),
                _alert("LLMRequestSurge", "warning", job="proxy-b", model="llama-3-70b"),
            ],
        )
        await _wait_for(lambda: rec.alerts("/alerts/warning"), log, "the proxy-c latency alert")
        await _wait_for(lambda: rec.alerts("/alerts/critical"), log, "LLMProxyDown")

        async with aiohttp.ClientSession() as s, s.get(f"{am}/api/v2/alerts") as r:
            states = {(a["labels"]["alertname"], a["labels"]["job"]): a["status"] for a in await r.json()}
        # A further group interval passes: still nothing from proxy-b on the warning route.
        await asyncio.sleep(2.5)

    assert states[("LLMHighLatency", "proxy-b")]["state"] == "suppressed"
    assert states[("LLMHighLatency", "proxy-b")]["inhibitedBy"]
    assert states[("LLMRequestSurge", "proxy-b")]["state"] == "suppressed"
    assert states[("LLMHighLatency", "proxy-c")]["state"] == "active"
    assert {(a["labels"]["alertname"], a["labels"]["job"]) for a in rec.alerts("/alerts/warning")} == {
        ("LLMHighLatency", "proxy-c")
    }
    assert {a["labels"]["alertname"] for a in rec.alerts("/alerts/critical")} == {"LLMProxyDown"}


# --- FALLBACK_* and WATCHDOG_URL rendered into the config (stack.render, used by setup.sh and the local stack) ---

FALLBACK_ENV = {
    "FALLBACK_EMAIL_TO": "oncall@example.com",
    "FALLBACK_EMAIL_FROM": "alertmanager@example.com",
    "FALLBACK_SMTP_SMARTHOST": "smtp.example.com:587",
    "FALLBACK_SMTP_USERNAME": "am",
    "FALLBACK_WEBHOOK_URL": "https://hooks.example.com/fallback?key=abc",
    "WATCHDOG_URL": "https://hc-ping.example.com/3f1c",
}


def _rendered(tmp_path: Path, env: dict[str, str], password_file: bool = False) -> Path:
    from stack.render import render_deploy

    render_deploy(ROOT / "deploy", tmp_path / "out", env, password_file=password_file)
    am = tmp_path / "out" / "alertmanager"
    (am / "secrets").mkdir()
    (am / "secrets" / "bridge_token").write_text("t0ken\n")
    (am / "secrets" / "fallback_smtp_password").write_text("pw\n")
    return am / "alertmanager.yml"


def test_rendered_fallback_and_watchdog_pass_amtool_0_25(tmp_path: Path):
    path = _rendered(tmp_path, FALLBACK_ENV, password_file=True)
    result = _amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    config = yaml.safe_load(path.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    (email,) = receivers["fallback"]["email_configs"]
    assert email["to"] == "oncall@example.com" and email["smarthost"] == "smtp.example.com:587"
    assert email["auth_password_file"] == "secrets/fallback_smtp_password"  # the password itself never in it
    assert email["require_tls"] is True
    assert receivers["fallback"]["webhook_configs"][0]["url"] == FALLBACK_ENV["FALLBACK_WEBHOOK_URL"]
    (ping,) = receivers["watchdog"]["webhook_configs"]
    assert ping["url"] == FALLBACK_ENV["WATCHDOG_URL"] and ping["send_resolved"] is False
    # Pinged every minute: the dead-man's switch can alarm within minutes of the pings stopping.
    (watchdog,) = [r for r in config["route"]["routes"] if r["receiver"] == "watchdog"]
    assert watchdog["repeat_interval"] == "1m" and watchdog["group_interval"] == "1m"
    # The routes are those of the shipped file.
    result = _amtool(
        "config", "routes", "test", f"--config.file={path}", "alertname=AlertBridgeDown", "severity=critical"
    )
    assert result.stdout.split() == ["fallback,bridge-critical"]


def test_without_fallback_settings_the_receivers_stay_empty(tmp_path: Path):
    path = _rendered(tmp_path, {})
    assert _amtool("check-config", str(path)).returncode == 0
    receivers = {r["name"]: r for r in yaml.safe_load(path.read_text())["receivers"]}
    assert set(receivers["fallback"]) == {"name"} and set(receivers["watchdog"]) == {"name"}


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FALLBACK_EMAIL_TO": "a@example.com", "FALLBACK_SMTP_SMARTHOST": "smtp:25"}, "FALLBACK_EMAIL_FROM"),
        ({"FALLBACK_EMAIL_TO": "a@example.com", "FALLBACK_EMAIL_FROM": "b@example.com"}, "FALLBACK_SMTP_SMARTHOST"),
        ({"FALLBACK_SMTP_SMARTHOST": "smtp:25"}, "FALLBACK_EMAIL_TO"),
        ({"FALLBACK_WEBHOOK_URL": "ftp://secret-host/x"}, "FALLBACK_WEBHOOK_URL"),
        ({"WATCHDOG_URL": "hc-ping.example.com/secret"}, "WATCHDOG_URL"),
        ({"FALLBACK_SMTP_REQUIRE_TLS": "maybe"}, "FALLBACK_SMTP_REQUIRE_TLS"),
    ],
)
def test_bad_fallback_settings_name_the_variable_not_the_value(tmp_path: Path, env: dict[str, str], named: str):
    from stack.render import RenderError, render_deploy

    with pytest.raises(RenderError) as err:
        render_deploy(ROOT / "deploy", tmp_path / "out", env)
    assert named in str(err.value)
    assert "secret" not in str(err.value)
