"""One Slack message per alert group with a bot token: chat.postMessage returns `ts`, later notifications
chat.update it and reply in its thread; across a restart of the real bridge process too."""

from __future__ import annotations

import logging
import signal

import aiohttp
import pytest

from bridge.app import create_app
from bridge.channels import CHANNEL_TYPES, create_channel
from bridge.channels.slack import SlackSettings
from bridge.config import ConfigError, load_config
from bridge.model import ChannelContext, Outcome
from bridge.payload import parse_notification
from tests.bridge.test_dispatch import eventually, payload, post, sample
from tests.bridge.test_lifecycle_discord import _delivered, _firing_then_more_then_resolved, _refs
from tests.bridge.test_restart import _post
from tests.fakes.recorder import Answer
from tests.fakes.slack_api import FakeSlackApi
from tests.reliability.support import run_bridge

TOKEN = "xoxb-test-token"


def _env(fake: FakeSlackApi, **extra: str) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": TOKEN, "SLACK_CHANNEL": "#alerts", "SLACK_API_URL": fake.api_url, **extra}


def _sent(client) -> float | None:
    return sample(client, "alert_bridge_deliveries_total", channel="slack", result="delivered")


async def _app(aiohttp_client, tmp_path, **env: str):
    env = {"BRIDGE_DATA_DIR": str(tmp_path / "data"), "BRIDGE_RETRY_INITIAL": "0.1", **env}
    return await aiohttp_client(create_app(load_config(env, CHANNEL_TYPES)))


def _methods(fake: FakeSlackApi) -> list[str]:
    return [r.path.rsplit("/", 1)[-1] + (" (thread)" if "thread_ts" in r.json else "") for r in fake.delivered]


async def test_post_then_update_and_thread_replies(aiohttp_client, tmp_path):
    async with FakeSlackApi(token=TOKEN, burst=100) as fake:
        client = await _app(aiohttp_client, tmp_path, **_env(fake))
        firing, more, resolved = _firing_then_more_then_resolved()
        assert (await post(client, firing)).status == 200
        await eventually(lambda: len(fake.delivered) == 1)
        (ts,) = fake.messages
        assert fake.messages[ts]["attachments"][0]["color"] == "#D32F2F"
        assert (await post(client, more)).status == 200
        await eventually(lambda: len(fake.delivered) == 3)
        assert (await post(client, resolved)).status == 200
        await eventually(lambda: len(fake.delivered) == 5)
        await eventually(lambda: _sent(client) == 3)
    assert _methods(fake) == [
        "chat.postMessage",
        "chat.update",
        "chat.postMessage (thread)",
        "chat.update",
        "chat.postMessage (thread)",
    ]
    assert list(fake.messages) == [ts]  # one message in the channel, and two replies in its thread
    final = fake.messages[ts]
    assert final["edits"] == 2 and final["attachments"][0]["color"] == "#2E7D32"
    assert "RESOLVED" in final["text"]
    assert [t for t, _ in fake.replies] == [ts, ts]
    assert "2 firing" in fake.replies[0][1]
    assert fake.replies[1][1] == "✅ Resolved after 10m 0s"  # payload(): 18:03:19 to 18:13:19


async def test_a_resolve_after_a_restart_updates_the_original(tmp_path):
    firing, more, resolved = _firing_then_more_then_resolved()
    async with FakeSlackApi(token=TOKEN, burst=100) as fake:
        async with run_bridge(tmp_path, **_env(fake)) as b:
            proc, url = b.proc, b.url
            assert await _post(url, firing) == 200
            await eventually(lambda: _delivered(tmp_path) == 1)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        async with run_bridge(tmp_path, **_env(fake)) as b:
            proc, url = b.proc, b.url
            assert await _post(url, more) == 200
            assert await _post(url, resolved) == 200
            await eventually(lambda: _delivered(tmp_path) == 3, timeout=15)
            await eventually(lambda: _refs(tmp_path) == 0)
        log = "".join(p.read_text() for p in tmp_path.glob("bridge-*.log"))
    (ts,) = fake.messages
    assert fake.messages[ts]["edits"] == 2 and "RESOLVED" in fake.messages[ts]["text"]
    assert [t for t, _ in fake.replies] == [ts, ts]
    assert "notification accepted" in log and TOKEN not in log


async def test_a_deleted_message_is_posted_again_and_429_waited_out(aiohttp_client, tmp_path):
    async with FakeSlackApi(token=TOKEN, burst=100) as fake:
        client = await _app(aiohttp_client, tmp_path, **_env(fake))
        firing, more, _ = _firing_then_more_then_resolved()
        await post(client, firing)
        await eventually(lambda: len(fake.delivered) == 1)
        fake.messages.clear()  # deleted in Slack
        fake.script.append(Answer(429, '{"ok": false, "error": "ratelimited"}', {"Retry-After": "1"}))
        await post(client, more)
        await eventually(lambda: len(fake.messages) == 1, timeout=15)
        assert sample(client, "alert_bridge_rate_limited_total", channel="slack") == 1
    updates = [r for r in fake.requests if r.path.endswith("chat.update")]
    assert [r.status for r in updates] == [429, 200]  # ok: false message_not_found is HTTP 200
    assert updates[1].at - updates[0].at >= 1.0
    assert fake.requests[-1].path.endswith("chat.postMessage") and "thread_ts" not in fake.requests[-1].json


@pytest.mark.parametrize(("error", "replies"), [("internal_error", 1), ("thread_not_found", 0)])
async def test_a_failed_thread_reply_is_retried_only_when_it_may_go_later(aiohttp_client, tmp_path, error, replies):
    async with FakeSlackApi(token=TOKEN, burst=100) as fake:
        client = await _app(aiohttp_client, tmp_path, **_env(fake))
        firing, more, _ = _firing_then_more_then_resolved()
        await post(client, firing)
        await eventually(lambda: len(fake.delivered) == 1)
        fake.reply_errors.append(error)
        await post(client, more)
        await eventually(lambda: _sent(client) == 2)
    (message,) = fake.messages.values()
    assert "2 firing" in str(message["attachments"]) and len(fake.replies) == replies
    assert sample(client, "alert_bridge_dead_letters_total", channel="slack", reason=f"slack_{error}") is None


@pytest.mark.parametrize(
    ("answer", "outcome", "reason"),
    [
        pytest.param(Answer(200, '{"ok": false, "error": "channel_not_found"}'), Outcome.PERMANENT,
                     "slack_channel_not_found", id="channel_not_found"),
        pytest.param(Answer(200, '{"ok": false, "error": "invalid_auth"}'), Outcome.PERMANENT, "slack_invalid_auth",
                     id="invalid_auth"),
        pytest.param(Answer(200, '{"ok": false, "error": "internal_error"}'), Outcome.RETRY, "slack_internal_error",
                     id="internal_error"),
        pytest.param(Answer(503, '{"ok": false, "error": "service_unavailable"}'), Outcome.RETRY,
                     "http_503_service_unavailable", id="503"),
        pytest.param(Answer(429, '{"ok": false, "error": "ratelimited"}', {"Retry-After": "7"}), Outcome.RETRY,
                     "http_429_ratelimited", id="429"),
    ],
)  # fmt: skip
async def test_web_api_answers_are_classified(answer, outcome, reason):
    async with aiohttp.ClientSession() as session, FakeSlackApi(token=TOKEN) as fake:
        answer.headers.setdefault("Content-Type", "application/json")
        fake.script.append(answer)
        settings = SlackSettings(bot_token=TOKEN, channel="#alerts", api_url=fake.api_url)
        channel = create_channel("s", settings, ChannelContext(session=session))
        (message,) = channel.render(parse_notification(payload("g1")))
        result = await channel.send(message)
    assert (result.outcome, result.reason) == (outcome, reason)
    assert result.ref is None
    if answer.status == 429:
        assert result.retry_after == 7.0


async def test_token_never_in_logs_or_description(caplog):
    caplog.set_level(logging.DEBUG)
    async with aiohttp.ClientSession() as session, FakeSlackApi(token=TOKEN) as fake:
        settings = SlackSettings(bot_token=TOKEN, channel="#alerts", api_url=fake.api_url)
        channel = create_channel("s", settings, ChannelContext(session=session))
        (message,) = channel.render(parse_notification(payload("g1")))
        assert (await channel.send(message)).ref == f"C0ALERTS/{next(iter(fake.messages))}"
    assert TOKEN not in caplog.text and TOKEN not in channel.describe() and TOKEN not in channel.lane
    assert fake.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SLACK_BOT_TOKEN": TOKEN}, "SLACK_CHANNEL"),
        ({"SLACK_CHANNEL": "#alerts"}, "SLACK_CHANNEL"),
        (
            {"SLACK_BOT_TOKEN": TOKEN, "SLACK_CHANNEL": "#a", "SLACK_WEBHOOK_URL": "https://h.example/x"},
            "SLACK_BOT_TOKEN",
        ),
        ({"SLACK_BOT_TOKEN": TOKEN, "SLACK_CHANNEL": "#a", "SLACK_API_URL": "ftp://x"}, "SLACK_API_URL"),
    ],
)
def test_bad_slack_settings_name_the_variable(env, named):
    with pytest.raises(ConfigError) as err:
        load_config(env, CHANNEL_TYPES)
    assert named in str(err.value) and TOKEN not in str(err.value)


def test_bot_token_from_a_file(tmp_path):
    (tmp_path / "token").write_text(TOKEN + "\n")
    config = load_config({"SLACK_BOT_TOKEN_FILE": str(tmp_path / "token"), "SLACK_CHANNEL": "C1"}, CHANNEL_TYPES)
    settings = config.channels["slack"]
    assert settings.bot_token == TOKEN and settings.api_url == "https://slack.com/api/"
    assert TOKEN in config.secrets()  # redacted from logs
    assert TOKEN not in repr(settings)
