"""Slack channel against a Slack-like webhook: Block Kit content, mentions, classification, no leaked URL."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from bridge.channels import create_channel
from bridge.channels.slack import SlackSettings
from bridge.model import ChannelContext, Outcome
from bridge.payload import parse_notification
from tests.fakes.payloads import alert, group
from tests.fakes.recorder import Answer
from tests.fakes.slack import FakeSlack

SECRET_PATH = "/services/T000/B000/XXXXSECRETXXXX"


@pytest.fixture
async def slack():
    async with FakeSlack(burst=100) as server:
        yield server


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


def _channel(url: str, session, **options):
    ctx = ChannelContext(
        session=session,
        grafana_url="https://grafana.example.com/d/llm",
        runbook_base_url="https://git.example.com/llm/blob/main/",
        alertmanager_url="https://am.example.com",
    )
    return create_channel("slack", SlackSettings(webhook_url=url + SECRET_PATH, **options), ctx)


def _blocks(body: dict) -> list[dict]:
    return body["attachments"][0]["blocks"]


async def test_firing_group_delivered_with_everything_worth_reading(slack, session):
    channel = _channel(slack.url, session, mentions={"critical": ["here", "S0123ABC"]})
    payload = group([alert(), alert("LLMHighLatency", "warning", model="llama-3-70b", index=1)])
    messages = channel.render(parse_notification(payload))
    assert len(messages) == 1 and not messages[0].truncated
    assert (await channel.send(messages[0])).outcome is Outcome.DELIVERED
    body = slack.requests[0].json
    assert slack.requests[0].path == SECRET_PATH
    assert body["text"].startswith("<!here> <!subteam^S0123ABC> 🔴 FIRING")  # mentions only from config
    assert body["attachments"][0]["color"] == "#D32F2F"  # critical red
    blocks = _blocks(body)
    assert blocks[0]["type"] == "header" and "FIRING" in blocks[0]["text"]["text"]
    assert "2 firing" in blocks[1]["elements"][0]["text"]
    first = blocks[2]["text"]["text"]
    assert "LLMHighFailureRate" in first and "critical" in first and "`gpt-4o`" in first
    assert "High failure rate for gpt-4o" in first and "12% of requests" in first
    assert "<https://git.example.com/llm/blob/main/docs/runbooks.md#llmhighfailurerate|Runbook>" in first
    assert "<https://grafana.example.com/d/llm|Dashboard>" in first
    assert "<https://am.example.com/#/silences/new?filter=%7Balertname%3D%22LLMHighFailureRate%22" in first
    assert "|Source>" in first and "Started 2026-01-10 10:00:00 UTC" in first
    assert "LLMHighLatency" in blocks[4]["text"]["text"]  # critical first, then warning
    assert channel.pace.messages == 1 and channel.pace.per_seconds == 1.0


async def test_resolved_shows_duration_green_and_no_mention(slack, session):
    channel = _channel(slack.url, session, mentions={"critical": ["channel"]})
    (message,) = channel.render(parse_notification(group([alert(status="resolved")])))
    await channel.send(message)
    body = slack.requests[0].json
    assert "<!channel>" not in body["text"] and "RESOLVED" in body["text"]
    assert body["attachments"][0]["color"] == "#2E7D32"
    assert "resolved after 7m 30s" in _blocks(body)[2]["text"]["text"]


@pytest.mark.parametrize(
    ("answer", "outcome", "reason", "wait"),
    [
        pytest.param(Answer(429, "rate_limited", {"Retry-After": "3"}), Outcome.RETRY, "http_429_rate_limited", 3.0,
                     id="429"),
        pytest.param(Answer(500, "rollup_error"), Outcome.RETRY, "http_500_rollup_error", None, id="500"),
        pytest.param(Answer(400, "invalid_blocks"), Outcome.PERMANENT, "http_400_invalid_blocks", None, id="400"),
        pytest.param(Answer(404, "no_service"), Outcome.PERMANENT, "http_404_no_service", None, id="404"),
        pytest.param(Answer(410, "channel_is_archived"), Outcome.PERMANENT, "http_410_channel_is_archived", None,
                     id="410"),
        pytest.param(Answer(400, "<html>not a word</html>"), Outcome.PERMANENT, "http_400", None, id="odd-body"),
    ],
)  # fmt: skip
async def test_answers_are_classified_and_never_retried_by_the_sdk(slack, session, answer, outcome, reason, wait):
    slack.script.append(answer)
    channel = _channel(slack.url, session)
    result = await channel.send(channel.render(parse_notification(group([alert()])))[0])
    assert (result.outcome, result.reason, result.retry_after) == (outcome, reason, wait)
    assert len(slack.requests) == 1


async def test_rate_limit_of_the_fake_is_reported_with_retry_after(session):
    async with FakeSlack(rate=1.0, burst=1) as slack:
        channel = _channel(slack.url, session)
        message = channel.render(parse_notification(group([alert()])))[0]
        first = await channel.send(message)
        second = await channel.send(message)  # at once: over 1 msg/s
    assert first.outcome is Outcome.DELIVERED
    assert second.outcome is Outcome.RETRY and second.retry_after is not None and second.retry_after >= 1


async def test_webhook_url_never_logged_or_described(slack, session, caplog):
    caplog.set_level(logging.DEBUG)
    channel = _channel(slack.url, session)
    await channel.send(channel.render(parse_notification(group([alert()])))[0])
    slack.script.append(Answer(500, "x"))
    await channel.send(channel.render(parse_notification(group([alert()])))[0])
    assert "SECRET" not in caplog.text
    assert "SECRET" not in channel.describe() and "SECRET" not in channel.lane
    assert channel.describe().endswith("/services/***")


async def test_connection_refused_is_retry(session):
    from tests.realbin import free_port

    channel = _channel(f"http://127.0.0.1:{free_port()}", session)
    result = await channel.send(channel.render(parse_notification(group([alert()])))[0])
    assert (result.outcome, result.reason) == (Outcome.RETRY, "connection_error")


async def test_template_override_file_by_file(slack, session, tmp_path):
    (tmp_path / "slack.title.j2").write_text("Custom: {{ group.title }}")
    ctx = ChannelContext(session=session, templates_dir=tmp_path)
    channel = create_channel("slack", SlackSettings(webhook_url=slack.url + SECRET_PATH), ctx)
    (message,) = channel.render(parse_notification(group([alert("Evil<!channel>")])))
    blocks = _blocks(message.body)
    assert blocks[0]["text"]["text"] == "Custom: Evil&lt;!channel&gt;"  # alert text escaped even in overrides
    assert "High failure rate" in blocks[2]["text"]["text"]  # the other templates stay the defaults
    assert channel.violations(message) == []
