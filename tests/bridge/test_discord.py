"""Discord channel against a Discord-like webhook: embeds, allowed_mentions, wait=true, rate-limit headers."""

from __future__ import annotations

import aiohttp
import pytest

from bridge.channels import create_channel
from bridge.channels.discord import DiscordSettings
from bridge.model import ChannelContext, Outcome
from bridge.payload import parse_notification
from tests.fakes.discord import FakeDiscord
from tests.fakes.payloads import alert, group
from tests.fakes.recorder import Answer

SECRET_PATH = "/api/webhooks/123456/TOKENSECRET"


@pytest.fixture
async def discord():
    async with FakeDiscord(limit=1000) as server:
        yield server


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def _channel(url: str, session, **options):
    ctx = ChannelContext(session=session, grafana_url="https://grafana.example.com/d/llm")
    return create_channel("discord", DiscordSettings(webhook_url=url + SECRET_PATH, **options), ctx)


async def test_firing_group_as_coloured_embeds_with_configured_mentions(discord, session):
    channel = _channel(discord.url, session, mention_roles={"critical": ["111"]}, mention_users={"critical": ["222"]},
                       username="LLM alerts")  # fmt: skip
    payload = group([alert(), alert("LLMHighLatency", "warning", index=1)])
    (message,) = channel.render(parse_notification(payload))
    result = await channel.send(message)
    assert result.outcome is Outcome.DELIVERED
    req = discord.requests[0]
    assert req.path == SECRET_PATH and req.query == {"wait": "true"}
    body = req.json
    assert body["content"] == "<@&111> <@222>"
    assert body["allowed_mentions"] == {"parse": [], "roles": ["111"], "users": ["222"]}
    assert body["username"] == "LLM alerts"
    first, second = body["embeds"]
    assert first["title"] == "🔴 [FIRING] LLMHighFailureRate" and first["color"] == 0xD32F2F
    assert second["color"] == 0xF9A825
    assert "**High failure rate for gpt\\-4o**" not in first["description"]  # dash only escaped at line start
    assert "High failure rate for gpt-4o" in first["description"]
    assert "[Dashboard](https://grafana.example.com/d/llm)" in first["description"]
    assert "[Silence](http://alertmanager:9093/#/silences/new?filter=" in first["description"]
    assert "Runbook: docs/runbooks.md\\#llmhighfailurerate" not in first["description"]
    assert "2 firing" in second["footer"]["text"]
    assert result.remaining is not None and result.reset_after is not None


async def test_resolved_pings_nobody(discord, session):
    channel = _channel(discord.url, session, mention_roles={"critical": ["111"]})
    (message,) = channel.render(parse_notification(group([alert(status="resolved")])))
    await channel.send(message)
    body = discord.requests[0].json
    assert "content" not in body and body["allowed_mentions"] == {"parse": [], "roles": [], "users": []}
    assert body["embeds"][0]["color"] == 0x2E7D32 and "resolved after 7m 30s" in body["embeds"][0]["description"]


async def test_rate_limit_headers_and_429_retry_after(session):
    async with FakeDiscord(limit=2, per=5.0) as discord:
        channel = _channel(discord.url, session)
        message = channel.render(parse_notification(group([alert()])))[0]
        first = await channel.send(message)
        second = await channel.send(message)
        third = await channel.send(message)
    assert (first.remaining, second.remaining) == (1, 0)
    assert 0 < second.reset_after <= 5.0
    assert third.outcome is Outcome.RETRY and third.reason == "http_429"
    assert third.retry_after is not None and third.retry_after >= 3.0  # the rest of the 5 s window


@pytest.mark.parametrize(
    ("answer", "outcome", "reason", "wait"),
    [
        pytest.param(Answer(429, '{"retry_after": 2.5, "global": false}', {"Retry-After": "1"}), Outcome.RETRY,
                     "http_429", 2.5, id="429-json-longer-than-header"),
        pytest.param(Answer(429, "{}", {"Retry-After": "4"}), Outcome.RETRY, "http_429", 4.0, id="429-header"),
        pytest.param(Answer(502, "bad gateway"), Outcome.RETRY, "http_502", None, id="502"),
        pytest.param(Answer(400, '{"code": 50035, "message": "Invalid Form Body"}'), Outcome.PERMANENT,
                     "http_400_50035", None, id="400"),
        pytest.param(Answer(401, '{"code": 50027, "message": "Invalid Webhook Token"}'), Outcome.PERMANENT,
                     "http_401_50027", None, id="401"),
        pytest.param(Answer(404, '{"code": 10015, "message": "Unknown Webhook"}'), Outcome.PERMANENT,
                     "http_404_10015", None, id="404"),
    ],
)  # fmt: skip
async def test_answers_are_classified(discord, session, answer, outcome, reason, wait):
    discord.script.append(answer)
    channel = _channel(discord.url, session)
    result = await channel.send(channel.render(parse_notification(group([alert()])))[0])
    assert (result.outcome, result.reason, result.retry_after) == (outcome, reason, wait)


async def test_existing_query_kept_and_secret_redacted(discord, session):
    ctx = ChannelContext(session=session)
    settings = DiscordSettings(webhook_url=f"{discord.url}{SECRET_PATH}?thread_id=42")
    channel = create_channel("d", settings, ctx)
    await channel.send(channel.render(parse_notification(group([alert()])))[0])
    assert discord.requests[0].query == {"thread_id": "42", "wait": "true"}
    assert "TOKENSECRET" not in channel.describe() and "TOKENSECRET" not in channel.lane
    assert channel.pace.messages == 5 and channel.pace.per_seconds == 2.0


def test_mention_ids_must_be_snowflakes():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="snowflakes"):
        DiscordSettings(webhook_url="https://discord.com/api/webhooks/1/x", mention_roles={"critical": ["@everyone"]})
