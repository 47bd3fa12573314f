"""Injection: hostile labels and annotations stay inert text in every channel."""

from __future__ import annotations

import io
import json

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
from tests.fakes.payloads import alert, group
from tests.fakes.recorder import Recorder, texts
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import smtp_server

HOSTILE = (
    "<!channel> <!here> @everyone @here <@123> <@&123> </td><script>alert(1)</script> "
    "[x](http://evil.example) <http://evil.example|click> **bold** \x1b[2J"
)


def _payload() -> dict:
    a = alert(
        "Evil\r\nBcc: victim@example.com\r\n" + HOSTILE,
        "critical",
        model=HOSTILE,
        summary=HOSTILE,
        description=HOSTILE + "\n# heading\n> quote",
        extra_labels={"instance": HOSTILE},
        annotations={"runbook_url": "javascript:alert(1)", "dashboard_url": 'https://ok.example/"><script>'},
    )
    return group([a, alert(index=1)])


async def test_slack_inert():
    async with aiohttp.ClientSession() as session, FakeSlack(burst=100) as slack:
        channel = create_channel("s", SlackSettings(webhook_url=slack.url + "/x"), ChannelContext(session=session))
        for m in channel.render(parse_notification(_payload())):
            assert (await channel.send(m)).outcome is Outcome.DELIVERED
        body = slack.requests[0].json
    # A javascript: runbook is shown as text, never as a link.
    for text in texts(body):
        for bad in ("<!channel>", "<!here>", "<@123>", "<http://evil", "<script>", "<javascript:"):
            assert bad not in text
    assert "&lt;!channel&gt;" in json.dumps(body)  # shown, as text


async def test_discord_inert_and_pings_nobody():
    async with aiohttp.ClientSession() as session, FakeDiscord(limit=100) as discord:
        channel = create_channel("d", DiscordSettings(webhook_url=discord.url + "/x"), ChannelContext(session=session))
        for m in channel.render(parse_notification(_payload())):
            assert (await channel.send(m)).outcome is Outcome.DELIVERED
        body = discord.requests[0].json
    assert "content" not in body  # nothing configured: nothing to ping, and alert text never goes there
    assert body["allowed_mentions"] == {"parse": [], "roles": [], "users": []}
    for text in texts(body["embeds"]):
        for bad in ("@everyone", "@here", "<@123>", "<@&123>", "[x](http", "**bold**", "(javascript:"):
            assert bad not in text
        assert "\n# heading" not in text and "\n> quote" not in text


async def test_email_inert_subject_and_html():
    settings = EmailSettings.model_validate({"host": "127.0.0.1", "tls": "none", "from": "a@example.com",
                                             "to": ["oncall@example.com"]})  # fmt: skip
    with smtp_server() as box:
        channel = create_channel("e", settings.model_copy(update={"port": box.port}), ChannelContext(session=None))
        for m in channel.render(parse_notification(_payload())):
            assert (await channel.send(m)).outcome is Outcome.DELIVERED
    (mail,) = box.messages
    assert box.envelopes[0][1] == ["oncall@example.com"]  # no injected Bcc recipient
    assert mail["Bcc"] is None and "\n" not in mail["Subject"] and "\r" not in mail["Subject"]
    html = mail.get_body(("html",)).get_content()
    assert "<script>" not in html and "</td><script>" not in html and "&lt;script&gt;" in html
    assert 'href="javascript:' not in html and 'href="https://ok.example/%22%3E%3Cscript%3E"' in html


async def test_console_and_webhook_inert():
    stream = io.StringIO()
    console = ConsoleChannel("console", ConsoleSettings(), ChannelContext(session=None), stream=stream)
    for m in console.render(parse_notification(_payload())):
        await console.send(m)
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()
    async with aiohttp.ClientSession() as session, Recorder() as receiver:
        hook = create_channel("w", WebhookSettings(url=receiver.url), ChannelContext(session=session))
        for m in hook.render(parse_notification(_payload())):
            await hook.send(m)
        assert receiver.requests[0].json == _payload()  # forwarded as JSON data, byte-for-byte meaning


@pytest.mark.parametrize("severity", ["critical", "warning"])
def test_configured_slack_mentions_are_the_only_mentions(severity):
    settings = SlackSettings(webhook_url="https://h.example/s", mentions={"critical": ["here"]})
    channel = create_channel("s", settings, ChannelContext(session=None))
    payload = _payload()
    for a in payload["alerts"]:
        a["labels"]["severity"] = severity
    (message,) = channel.render(parse_notification(payload))
    mentions = [t for t in texts(message.body) if "<!" in t]
    if severity == "critical":
        assert mentions == [message.body["text"]] and message.body["text"].startswith("<!here> ")
        assert message.body["text"].count("<!") == 1
    else:
        assert mentions == []
