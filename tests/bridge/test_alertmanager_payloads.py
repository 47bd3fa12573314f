"""Real Alertmanager 0.25 payloads, captured from the binary (firing then resolved), delivered to every channel."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime

import aiohttp
import pytest

from bridge.channels import create_channel
from bridge.channels.console import ConsoleChannel, ConsoleSettings
from bridge.channels.discord import DiscordSettings
from bridge.channels.email import EmailSettings
from bridge.channels.slack import SlackSettings
from bridge.channels.webhook import WebhookSettings
from bridge.model import ChannelContext, Outcome
from bridge.payload import parse_notification
from tests.fakes.discord import FakeDiscord
from tests.fakes.recorder import Recorder
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import smtp_server

pytestmark = pytest.mark.realbin

CONFIG = """
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}/hook
        send_resolved: true
"""


async def _wait_for(receiver: Recorder, status: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in receiver.requests:
            if r.json["status"] == status:
                return r.json
        await asyncio.sleep(0.1)
    raise AssertionError(f"no {status} notification from Alertmanager within {timeout}s")


@pytest.fixture
async def captured(alertmanager_factory):
    """(firing, resolved) payloads as Alertmanager 0.25 sent them."""
    async with Recorder() as receiver, aiohttp.ClientSession() as session:
        am = alertmanager_factory(CONFIG.format(url=receiver.url))
        alert = {
            "labels": {"alertname": "LLMHighFailureRate", "severity": "critical", "model": "gpt-4o",
                       "job": "llm-auth-proxy", "instance": "llm-exporter:9470"},
            "annotations": {"summary": "High failure rate for gpt-4o", "description": "12% of requests failed",
                            "runbook_url": "docs/runbooks.md#llmhighfailurerate"},
            "generatorURL": "http://prometheus:9090/graph?g0.expr=llm%3Afailure_ratio%3Arate5m&g0.tab=1",
            "startsAt": datetime.now(UTC).isoformat(),
        }  # fmt: skip
        async with session.post(f"{am.url}/api/v2/alerts", json=[alert]) as resp:
            assert resp.status == 200
        firing = await _wait_for(receiver, "firing")
        alert["endsAt"] = datetime.now(UTC).isoformat()
        async with session.post(f"{am.url}/api/v2/alerts", json=[alert]) as resp:
            assert resp.status == 200
        resolved = await _wait_for(receiver, "resolved")
        yield firing, resolved


async def test_real_payloads_delivered_to_every_channel(captured, tmp_path):
    firing_raw, resolved_raw = captured
    assert firing_raw["version"] == "4" and "truncatedAlerts" in firing_raw
    firing, resolved = parse_notification(firing_raw), parse_notification(resolved_raw)
    assert resolved.alerts[0].ends_at is not None and firing.alerts[0].ends_at is None

    console_out = io.StringIO()
    async with (
        aiohttp.ClientSession() as session,
        FakeSlack(burst=100) as slack,
        FakeDiscord(limit=100) as discord,
        Recorder() as hook,
    ):
        ctx = ChannelContext(session=session, alertmanager_url="https://am.example.com",
                             runbook_base_url="https://git.example.com/llm/blob/main/")  # fmt: skip
        with smtp_server() as box:
            email = EmailSettings(host="127.0.0.1", port=box.port, tls="none", from_="alerts@example.com",
                                  to=["oncall@example.com"])  # fmt: skip
            channels = [
                create_channel("slack", SlackSettings(webhook_url=f"{slack.url}/services/T/B/X"), ctx),
                create_channel("discord", DiscordSettings(webhook_url=f"{discord.url}/api/webhooks/1/t"), ctx),
                create_channel("email", email, ctx),
                create_channel("webhook", WebhookSettings(url=f"{hook.url}/in"), ctx),
                ConsoleChannel("console", ConsoleSettings(), ctx, stream=console_out),
            ]
            for notification in (firing, resolved):
                for channel in channels:
                    for message in channel.render(notification):
                        assert channel.violations(message) == []
                        result = await channel.send(message)
                        assert result.outcome is Outcome.DELIVERED, (channel.name, result)
            for channel in channels:
                await channel.close()

    # Slack: firing then resolved, with the content and links.
    slack_firing, slack_resolved = (r.json for r in slack.requests)
    text = str(slack_firing)
    assert "FIRING: LLMHighFailureRate" in text and "High failure rate for gpt-4o" in text and "`gpt-4o`" in text
    assert "https://am.example.com/#/silences/new?filter=" in text  # loopback externalURL replaced
    assert "https://git.example.com/llm/blob/main/docs/runbooks.md#llmhighfailurerate" in text
    assert "RESOLVED" in slack_resolved["text"] and "resolved after" in str(slack_resolved)
    # Discord
    d_firing, d_resolved = (r.json for r in discord.requests)
    assert d_firing["embeds"][0]["title"] == "🔴 [FIRING] LLMHighFailureRate"
    assert d_resolved["embeds"][0]["color"] == 0x2E7D32
    # Email: threaded firing and resolved
    m_firing, m_resolved = box.messages
    assert m_firing["Subject"].startswith("[FIRING:1] LLMHighFailureRate")
    assert m_resolved["Subject"].startswith("[RESOLVED] LLMHighFailureRate")
    assert m_firing["References"] == m_resolved["References"]
    # Webhook: Alertmanager's own payload, unchanged
    assert [r.json for r in hook.requests] == [firing_raw, resolved_raw]
    # Console
    out = console_out.getvalue()
    assert "[FIRING] LLMHighFailureRate" in out and "[RESOLVED] LLMHighFailureRate" in out
