"""Webhook channel: the original payload or a template's output, posted with headers, answers classified."""

from __future__ import annotations

import json

import aiohttp
import pytest

from bridge.channels import create_channel
from bridge.channels.webhook import WebhookSettings
from bridge.model import ChannelContext, Outcome
from bridge.payload import parse_notification
from tests.fakes.payloads import alert, group, sample
from tests.fakes.recorder import Answer, Recorder


@pytest.fixture
async def receiver():
    async with Recorder() as server:
        yield server


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as s:
        yield s


async def test_forwards_original_payload_with_headers(receiver, session):
    raw = sample("firing")
    raw["someFutureField"] = {"kept": True}  # unknown fields travel through untouched
    settings = WebhookSettings(url=f"{receiver.url}/hook/s3cret", headers={"X-Api-Key": "k1"})
    channel = create_channel("webhook", settings, ChannelContext(session=session))
    (message,) = channel.render(parse_notification(raw))
    result = await channel.send(message)
    assert result.outcome is Outcome.DELIVERED
    (req,) = receiver.requests
    assert req.path == "/hook/s3cret"
    assert req.json == raw
    assert req.headers["X-Api-Key"] == "k1"
    assert req.headers["Content-Type"] == "application/json"
    assert channel.type == "webhook" and channel.pace is None


async def test_template_output_is_sent(receiver, session, tmp_path):
    (tmp_path / "mine.json.j2").write_text(
        '{"title": {{ (group.STATUS ~ " " ~ group.title) | tojson }}, "n": {{ alerts | length }},'
        ' "receiver": {{ payload.receiver | tojson }}}'
    )
    settings = WebhookSettings(url=receiver.url, template="mine.json.j2")
    channel = create_channel("w", settings, ChannelContext(session=session, templates_dir=tmp_path))
    (message,) = channel.render(parse_notification(group([alert(), alert(index=1)])))
    assert (await channel.send(message)).outcome is Outcome.DELIVERED
    assert receiver.requests[0].json == {"title": "FIRING LLMHighFailureRate", "n": 2, "receiver": "critical"}
    assert receiver.requests[0].headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("answer", "outcome", "reason", "wait"),
    [
        pytest.param(Answer(204, b""), Outcome.DELIVERED, "", None, id="204"),
        pytest.param(Answer(429, headers={"Retry-After": "7"}), Outcome.RETRY, "http_429", 7.0, id="429"),
        pytest.param(Answer(503, headers={"Retry-After": "2"}), Outcome.RETRY, "http_503", 2.0, id="503"),
        pytest.param(Answer(500), Outcome.RETRY, "http_500", None, id="500"),
        pytest.param(Answer(408), Outcome.RETRY, "http_408", None, id="408"),
        pytest.param(Answer(400), Outcome.PERMANENT, "http_400", None, id="400"),
        pytest.param(Answer(404), Outcome.PERMANENT, "http_404", None, id="404"),
        pytest.param(Answer(302, headers={"Location": "/elsewhere"}), Outcome.PERMANENT, "http_302", None, id="302"),
    ],
)
async def test_answers_are_classified(receiver, session, answer, outcome, reason, wait):
    receiver.script.append(answer)
    channel = create_channel("w", WebhookSettings(url=receiver.url), ChannelContext(session=session))
    result = await channel.send(channel.render(parse_notification(sample()))[0])
    assert (result.outcome, result.reason, result.retry_after) == (outcome, reason, wait)
    assert len(receiver.requests) == 1  # the channel never retries by itself


async def test_connection_refused_is_retry_without_secret(session):
    from tests.realbin import free_port

    url = f"http://127.0.0.1:{free_port()}/hooks/TOPSECRET"
    channel = create_channel("w", WebhookSettings(url=url), ChannelContext(session=session))
    result = await channel.send(channel.render(parse_notification(sample()))[0])
    assert result.outcome is Outcome.RETRY and result.reason == "connection_error"
    assert "TOPSECRET" not in channel.describe() and "TOPSECRET" not in repr(result)
    assert "TOPSECRET" not in repr(WebhookSettings(url=url))


async def test_rate_setting_gives_a_pace(session):
    channel = create_channel("w", WebhookSettings(url="http://x.example/h", rate=0.5), ChannelContext(session=None))
    assert channel.pace is not None and channel.pace.messages == 1 and channel.pace.per_seconds == 2.0


async def test_same_url_same_lane_different_url_other_lane():
    ctx = ChannelContext(session=None)
    a = create_channel("a", WebhookSettings(url="http://x.example/h/1"), ctx)
    b = create_channel("b", WebhookSettings(url="http://x.example/h/1"), ctx)
    c = create_channel("c", WebhookSettings(url="http://x.example/h/2"), ctx)
    assert a.lane == b.lane != c.lane
    assert "h/1" not in a.lane


async def test_own_session_when_context_has_none(receiver):
    channel = create_channel("w", WebhookSettings(url=receiver.url), ChannelContext(session=None))
    try:
        result = await channel.send(channel.render(parse_notification(sample()))[0])
    finally:
        await channel.close()
    assert result.outcome is Outcome.DELIVERED
    assert json.loads(receiver.requests[0].body)["version"] == "4"
