"""Other projects' real webhook payloads (calert, prometheus-msteams, prom2teams, …) posted to the bridge.

The seven complete v4 payloads are delivered to every channel, within its limits, every alert name shown, in
one time zone, in one state; the 23 others (version 3 or none, Grafana's format, v4 fixtures trimmed of
`groupKey` or a per-alert `status`) are answered 400 naming the field. Sources: tests/data/peers/README.md.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bridge.app import create_app
from bridge.channels import CHANNEL_TYPES
from bridge.config import load_config
from bridge.payload import PayloadError, parse_notification
from tests.bridge.test_dispatch import eventually, sample
from tests.fakes.discord import FakeDiscord
from tests.fakes.recorder import Recorder
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import smtp_server

PEERS = Path(__file__).parent.parent / "data" / "peers" / "alertmanager"
FILES = sorted(PEERS.glob("*.json"))

# What each payload that is not a complete v4 notification must be refused for.
REFUSED = {
    "FUSAKLA_prometheus-ecosystem-testing-demo_alert_template_stub.json": "version",
    "bougou_alertmanager-webhook-adapter_grafana-alert.json": "version",
    "feiyu563_PrometheusAlert_prometheus-demo.json": "version",
    "idealista_prom2teams_all_ok.json": "groupKey",
    "idealista_prom2teams_all_ok_multiple.json": "groupKey",
    "idealista_prom2teams_without_fingerprint.json": "groupKey",
    "idealista_prom2teams_without_instance_field.json": "groupKey",
    "idealista_prom2teams_without_mandatory_field.json": "status",
    "inCaller_prometheus_bot_big_output_v3.json": "version",
    "inCaller_prometheus_bot_noGenURL.json": "version",
    "inCaller_prometheus_bot_production_example.json": "version",
    "inCaller_prometheus_bot_simpe_v3.json": "version",
    "kubesphere_notification-manager_alert1.json": "version",
    "kubesphere_notification-manager_alert15_79_alerts.json": "version",
    "kubesphere_notification-manager_alert_9_alerts.json": "version",
    "mr-karan_calert_docs_mock_payload.json": "version",
    "prometheus-msteams_prometheus-msteams_12_alerts.json": "field `status` - at `$.alerts[0]`",
    "prometheus-msteams_prometheus-msteams_disable_grouping.json": "field `status` - at `$.alerts[0]`",
    "prometheus-msteams_prometheus-msteams_prom_post_request.json": "field `status` - at `$.alerts[0]`",
    "prometheus-msteams_prometheus-msteams_too_large_19_alerts.json": "field `status` - at `$.alerts[0]`",
    "prometheus-msteams_prometheus-msteams_too_large_5_alerts.json": "field `status` - at `$.alerts[0]`",
    "prometheus-msteams_prometheus-msteams_without_common_summary.json": "field `status` - at `$.alerts[0]`",
    "timonwong_prometheus-webhook-dingtalk_PlaygroundDemoAlert.json": "version",
}
COMPLETE = [p for p in FILES if p.name not in REFUSED]


def test_the_peer_set_is_the_one_described():
    assert len(FILES) == 30 and len(COMPLETE) == 7 and set(REFUSED) <= {p.name for p in FILES}


@pytest.fixture
async def bridge(aiohttp_client, tmp_path):
    """The bridge with every channel pointed at a fake: Slack, Discord, email (real SMTP) and a webhook."""
    async with FakeSlack(burst=100, rate=100.0) as slack, FakeDiscord(limit=100) as discord, Recorder() as hook:
        with smtp_server() as box:
            env = {
                "BRIDGE_DATA_DIR": str(tmp_path / "data"),
                "BRIDGE_CONSOLE": "false",
                "SLACK_WEBHOOK_URL": f"{slack.url}/services/T0/B0/x",
                "DISCORD_WEBHOOK_URL": f"{discord.url}/api/webhooks/1/tok",
                "WEBHOOK_URL": f"{hook.url}/in",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(box.port),
                "SMTP_TLS": "none",
                "EMAIL_FROM": "bridge@example.com",
                "EMAIL_TO": "oncall@example.com",
            }
            client = await aiohttp_client(create_app(load_config(env, CHANNEL_TYPES)))
            yield client, {"slack": slack, "discord": discord, "webhook": hook, "email": box}


@pytest.mark.parametrize("path", [p for p in FILES if p.name in REFUSED], ids=lambda p: p.stem)
async def test_incomplete_payloads_are_a_400_naming_the_field(bridge, path):
    client, _ = bridge
    resp = await client.post("/alerts", data=path.read_bytes(), headers={"Content-Type": "application/json"})
    error = (await resp.json())["error"]
    assert resp.status == 400 and REFUSED[path.name] in error, error
    with pytest.raises(PayloadError, match=re.escape(REFUSED[path.name])):
        parse_notification(json.loads(path.read_bytes()))


def _texts(fakes, channel: str) -> list[str]:
    if channel == "email":
        return [f"{m['Subject']}\n{m.get_body(('plain',)).get_content()}" for m in fakes["email"].messages]
    return [r.body.decode() for r in fakes[channel].requests if r.status < 300]


async def test_complete_payloads_reach_every_channel_whole(bridge):
    client, fakes = bridge
    for path in COMPLETE:
        resp = await client.post("/alerts", data=path.read_bytes(), headers={"Content-Type": "application/json"})
        assert resp.status == 200, (path.name, await resp.text())
    channels = ("slack", "discord", "email", "webhook")
    for channel in channels:
        await eventually(
            lambda c=channel: sample(client, "alert_bridge_deliveries_total", channel=c, result="delivered") == 7,
            timeout=20,
        )
    for channel in channels:
        assert sample(client, "alert_bridge_dead_letters_total", channel=channel, reason="http_400") in (None, 0)

    # The webhook forwards each body byte for byte (non-ASCII, escapes and spacing as received).
    assert sorted(r.body for r in fakes["webhook"].requests) == sorted(p.read_bytes() for p in COMPLETE)

    # Every alert name of every payload appears on every rendering channel; times in UTC only.
    for channel in ("slack", "discord", "email"):
        texts = _texts(fakes, channel)
        assert len(texts) >= 7
        # JSON bodies escape non-ASCII as \\uXXXX only if the sender chose to: decode them to compare names.
        everything = "\n".join(
            json.dumps(json.loads(t), ensure_ascii=False) if channel != "email" else t for t in texts
        )
        for path in COMPLETE:
            for alert in json.loads(path.read_bytes())["alerts"]:
                name = alert["labels"].get("alertname", "")
                assert name in everything, (channel, name)
        assert "+05:30" not in everything and "+02:00" not in everything, channel
        assert "UTC" in everything, channel


async def test_a_firing_group_whose_alerts_all_resolved_reads_resolved_everywhere(bridge):
    """vmalert sends `status: firing` with its only alert resolved: every channel shows the same state."""
    client, fakes = bridge
    path = PEERS / "qinquanliuxiang666_alertmanager_alert_zh.json"
    assert json.loads(path.read_bytes())["status"] == "firing"
    resp = await client.post("/alerts", data=path.read_bytes(), headers={"Content-Type": "application/json"})
    assert resp.status == 200
    for channel in ("slack", "discord", "email"):
        await eventually(
            lambda c=channel: sample(client, "alert_bridge_deliveries_total", channel=c, result="delivered") == 1
        )
        [text] = _texts(fakes, channel)
        assert "RESOLVED" in text and "FIRING" not in text, (channel, text[:300])
