"""The app end to end: real Alertmanager 0.25 posting with its Bearer credentials, routes, console default."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web

from bridge.app import create_app
from bridge.config import load_config
from bridge.keys import STATE
from common.logs import JsonFormatter
from tests.bridge.test_dispatch import Destination, eventually, payload, post, sample

TOKEN = "am-bridge-token"


async def _destination(aiohttp_server, path: str = "/hook/secret") -> Destination:
    dest = Destination()
    app = web.Application()
    app.router.add_post(path, dest.handle)
    server = await aiohttp_server(app)
    dest.url = str(server.make_url(path))
    return dest


@pytest.mark.realbin
async def test_real_alertmanager_delivers_firing_and_resolved_through_routes(
    tmp_path, aiohttp_server, alertmanager_factory
):
    critical = await _destination(aiohttp_server)
    warning = await _destination(aiohttp_server)
    (tmp_path / "bridge.yml").write_text(
        f'channels:\n  crit: {{type: webhook, url: "{critical.url}"}}\n'
        f'  warn: {{type: webhook, url: "{warning.url}"}}\n'
        "routes:\n  - path: critical\n    channels: [crit]\ndefault_channels: [warn]\n"
    )
    env = {"BRIDGE_CONFIG": str(tmp_path / "bridge.yml"), "BRIDGE_TOKEN": TOKEN, "BRIDGE_DATA_DIR": str(tmp_path / "d")}
    bridge = await aiohttp_server(create_app(load_config(env)))
    (tmp_path / "token").write_text(TOKEN)
    base = f"http://127.0.0.1:{bridge.port}"
    receiver = """
  - name: {name}
    webhook_configs:
      - url: {base}/alerts/{name}
        send_resolved: true
        http_config:
          authorization:
            credentials_file: {token}
"""
    config = f"""
route:
  receiver: warning
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="critical"']
      receiver: critical
receivers:
{receiver.format(name="critical", base=base, token=tmp_path / "token")}
{receiver.format(name="warning", base=base, token=tmp_path / "token")}
"""
    am = alertmanager_factory(config)
    start = datetime.now(UTC) - timedelta(minutes=1)
    alerts = [
        {
            "labels": {"alertname": "LLMHighFailureRate", "severity": "critical", "model": "gpt-4o"},
            "annotations": {"summary": "failing"},
            "startsAt": start.isoformat(),
        },
        {
            "labels": {"alertname": "LLMHighLatency", "severity": "warning", "model": "gpt-4o"},
            "annotations": {"summary": "slow"},
            "startsAt": start.isoformat(),
        },
    ]
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{am.url}/api/v2/alerts", json=alerts) as r:
            assert r.status == 200
        await eventually(lambda: critical.requests and warning.requests, timeout=20)
        for a in alerts:
            a["endsAt"] = datetime.now(UTC).isoformat()
        async with s.post(f"{am.url}/api/v2/alerts", json=alerts) as r:
            assert r.status == 200
        await eventually(lambda: any(b["status"] == "resolved" for b in critical.bodies), timeout=20)

    assert critical.bodies[0]["status"] == "firing"
    assert critical.bodies[0]["commonLabels"]["alertname"] == "LLMHighFailureRate"
    assert warning.bodies[0]["commonLabels"]["alertname"] == "LLMHighLatency"
    registry = bridge.app[STATE].metrics.registry
    assert (
        registry.get_sample_value(
            "alert_bridge_notifications_received_total", {"route": "critical", "status": "firing"}
        )
        == 1
    )
    assert (
        registry.get_sample_value("alert_bridge_notifications_received_total", {"route": "warning", "status": "firing"})
        == 1
    )
    assert registry.get_sample_value("alert_bridge_notifications_rejected_total", {"reason": "unauthorized"}) == 0


async def test_without_any_channel_messages_go_to_stdout(aiohttp_client, tmp_path, capsys):
    client = await aiohttp_client(create_app(load_config({"BRIDGE_DATA_DIR": str(tmp_path / "d")})))
    assert (await post(client, payload(summary_marker="x"))).status == 200
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="console", result="delivered"))
    out = capsys.readouterr().out
    assert "LLMHighFailureRate" in out and "alert 0 of g1" in out


async def test_open_mode_and_metrics_exposition(aiohttp_client, tmp_path):
    client = await aiohttp_client(create_app(load_config({"BRIDGE_DATA_DIR": str(tmp_path / "d")})))
    assert (await client.get("/dead-letters")).status == 200  # no token configured: open (with a warning)
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    text = await resp.text()
    assert "# TYPE alert_bridge_delivery_latency_seconds histogram" in text
    assert (await client.get("/alerts")).status == 405


@pytest.mark.parametrize(
    ("path", "label"),
    [
        pytest.param("/alerts", "default", id="default"),
        pytest.param("/alerts/critical", "critical", id="named"),
        pytest.param("/alerts/" + "x" * 80, "other", id="too-long"),
        pytest.param("/alerts/a%20b", "other", id="odd-characters"),
    ],
)
async def test_route_label(aiohttp_client, tmp_path, path, label):
    client = await aiohttp_client(create_app(load_config({"BRIDGE_DATA_DIR": str(tmp_path / "d")})))
    assert (await post(client, payload(), path=path)).status == 200
    assert sample(client, "alert_bridge_notifications_received_total", route=label, status="firing") == 1


def test_json_log_lines_carry_the_extra_fields():
    record = logging.LogRecord("bridge.x", logging.WARNING, __file__, 1, "delivery failed", None, None)
    record.channel = "slack"
    record.attempts = 3
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "delivery failed" and line["level"] == "warning"
    assert line["channel"] == "slack" and line["attempts"] == 3 and line["ts"].endswith("Z")
