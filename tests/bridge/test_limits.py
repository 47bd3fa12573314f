"""Every size limit held for a group of 500 alerts with 10 kB annotations, on every channel; "+N more" taken."""

from __future__ import annotations

import json

import aiohttp
import pytest

from bridge.channels import create_channel
from bridge.channels.discord import DiscordSettings
from bridge.channels.email import EmailSettings, limits
from bridge.channels.slack import SlackSettings
from bridge.model import ChannelContext, Message, Outcome
from bridge.payload import parse_notification
from tests.fakes.discord import FakeDiscord
from tests.fakes.payloads import alert, group
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import smtp_server

BIG = "x" * 10_000


def _huge_payload() -> dict:
    alerts = [
        alert(f"LLMAlert{i % 7}", ["warning", "critical", "info"][i % 3], model=f"model-{i}", index=i,
              summary=f"summary {i} " + BIG, description=f"description {i} " + BIG,
              annotations={"extra": BIG})
        for i in range(500)
    ]  # fmt: skip
    return group(alerts, truncated=12)


@pytest.fixture(scope="module")
def huge():
    payload = _huge_payload()
    assert 4_000_000 < len(json.dumps(payload)) < 16 * 1024 * 1024  # about 5 MB: within the default body cap
    return parse_notification(payload)


def _check_common(messages: list[Message], channel) -> None:
    assert 1 < len(messages) <= 3
    assert [(m.part, m.parts) for m in messages] == [(i, len(messages)) for i in range(1, len(messages) + 1)]
    assert all(m.truncated for m in messages)
    for m in messages:
        assert channel.violations(m) == []


def _strings(obj) -> str:
    return json.dumps(obj, ensure_ascii=False)


async def test_slack_500_alerts(huge):
    async with aiohttp.ClientSession() as session, FakeSlack(burst=100) as slack:
        channel = create_channel("slack", SlackSettings(webhook_url=slack.url + "/services/x"),
                                 ChannelContext(session=session))  # fmt: skip
        messages = channel.render(huge)
        _check_common(messages, channel)
        for m in messages:
            assert (await channel.send(m)).outcome is Outcome.DELIVERED  # the fake's own limits accept it
    last = _strings(messages[-1].body)
    assert "more alerts" in last and "#/alerts?filter=" in last
    first_lines = messages[0].body["attachments"][0]["blocks"][2]["text"]["text"]
    assert first_lines.startswith("🔴")  # critical firing first


async def test_discord_500_alerts(huge):
    async with aiohttp.ClientSession() as session, FakeDiscord(limit=100) as discord:
        channel = create_channel("discord", DiscordSettings(webhook_url=discord.url + "/api/webhooks/1/t"),
                                 ChannelContext(session=session))  # fmt: skip
        messages = channel.render(huge)
        _check_common(messages, channel)
        for m in messages:
            assert (await channel.send(m)).outcome is Outcome.DELIVERED
    assert "more alerts" in messages[-1].body["embeds"][-1]["description"]


async def test_email_500_alerts(huge):
    settings = EmailSettings.model_validate({"host": "127.0.0.1", "tls": "none", "from": "a@example.com",
                                             "to": ["b@example.com"]})  # fmt: skip
    with smtp_server() as box:
        channel = create_channel("email", settings.model_copy(update={"port": box.port}), ChannelContext(session=None))
        messages = channel.render(huge)
        _check_common(messages, channel)
        for m in messages:
            assert (await channel.send(m)).outcome is Outcome.DELIVERED
    assert len(box.messages) == len(messages)
    assert "[1/" in box.messages[0]["Subject"]
    html = box.messages[-1].get_body(("html",)).get_content()
    assert "more alerts" in html and len(html.encode()) <= limits.EMAIL_MAX_HTML_BYTES


def test_one_huge_alert_is_cut_but_keeps_its_links():
    payload = group([alert(summary=BIG, description=BIG)])
    ctx = ChannelContext(session=None, grafana_url="https://grafana.example.com")
    for settings in (
        SlackSettings(webhook_url="https://h.example/s"),
        DiscordSettings(webhook_url="https://h.example/d"),
    ):
        channel = create_channel("c", settings, ctx)
        (message,) = channel.render(parse_notification(payload))
        assert message.truncated and channel.violations(message) == []
        assert "https://grafana.example.com" in _strings(message.body)


def test_violations_name_the_broken_limit():
    slack = create_channel("s", SlackSettings(webhook_url="https://h.example/s"), ChannelContext(session=None))
    discord = create_channel("d", DiscordSettings(webhook_url="https://h.example/d"), ChannelContext(session=None))
    too_many_blocks = {"text": "t", "blocks": [{"type": "divider"}] * 51}
    long_header = {"text": "t", "blocks": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}]}
    assert any("51 blocks" in v for v in slack.violations(Message(body=too_many_blocks)))
    assert any("header" in v for v in slack.violations(Message(body=long_header)))
    eleven = {"embeds": [{"description": "d"}] * 11}
    heavy = {"embeds": [{"description": "d" * 4000}, {"description": "d" * 2001}]}
    assert any("11 embeds" in v for v in discord.violations(Message(body=eleven)))
    assert any("6000" in v for v in discord.violations(Message(body=heavy)))
    assert any("content" in v for v in discord.violations(Message(body={"content": "c" * 2001})))


async def test_fakes_reject_what_the_platforms_reject():
    """The fakes are only worth something if they say 400 to an oversized message."""
    async with aiohttp.ClientSession() as session, FakeSlack(burst=100) as slack, FakeDiscord(limit=100) as discord:
        s = create_channel("s", SlackSettings(webhook_url=slack.url + "/x"), ChannelContext(session=session))
        d = create_channel("d", DiscordSettings(webhook_url=discord.url + "/x"), ChannelContext(session=session))
        bad_slack = await s.send(Message(body={"text": "t", "blocks": [{"type": "divider"}] * 51}))
        bad_discord = await d.send(Message(body={"embeds": [{"title": "t" * 257}]}))
    assert (bad_slack.outcome, bad_slack.reason) == (Outcome.PERMANENT, "http_400_invalid_blocks")
    assert (bad_discord.outcome, bad_discord.reason) == (Outcome.PERMANENT, "http_400_50035")
