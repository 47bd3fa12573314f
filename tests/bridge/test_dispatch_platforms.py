"""The dispatcher with the real Slack and Discord channels against fakes that enforce their rate limits."""

from __future__ import annotations

import json

from bridge.app import create_app
from bridge.channels import CHANNEL_TYPES
from bridge.config import load_config
from tests.bridge.test_dispatch import eventually, payload, post, sample
from tests.fakes.discord import FakeDiscord
from tests.fakes.recorder import Answer
from tests.fakes.slack import FakeSlack


async def _app(aiohttp_client, tmp_path, **env: str):
    env = {"BRIDGE_DATA_DIR": str(tmp_path / "data"), "BRIDGE_RETRY_INITIAL": "0.1", **env}
    return await aiohttp_client(create_app(load_config(env, CHANNEL_TYPES)))


async def test_discord_burst_is_paced_without_a_429(aiohttp_client, tmp_path):
    async with FakeDiscord(limit=5, per=2.0) as fake:
        client = await _app(aiohttp_client, tmp_path, DISCORD_WEBHOOK_URL=f"{fake.url}/api/webhooks/1/tok")
        for i in range(8):
            assert (await post(client, payload(f"g{i}"))).status == 200
        await eventually(lambda: len(fake.delivered) == 8, timeout=15)
        assert [r.status for r in fake.requests if r.status == 429] == []
        assert fake.early == []
        assert sample(client, "alert_bridge_rate_limited_total", channel="discord") == 0


async def test_slack_steady_load_is_paced_without_a_429(aiohttp_client, tmp_path):
    async with FakeSlack(rate=1.0, burst=1) as fake:
        client = await _app(aiohttp_client, tmp_path, SLACK_WEBHOOK_URL=f"{fake.url}/services/T0/B0/x")
        for i in range(3):
            assert (await post(client, payload(f"g{i}"))).status == 200
        await eventually(lambda: len(fake.delivered) == 3, timeout=15)
        assert [r.status for r in fake.requests] == [200, 200, 200]


async def test_slack_429_is_waited_out_and_nothing_is_lost(aiohttp_client, tmp_path):
    async with FakeSlack() as fake:
        fake.script.append(Answer(429, "rate_limited", {"Retry-After": "1"}))
        client = await _app(aiohttp_client, tmp_path, SLACK_WEBHOOK_URL=f"{fake.url}/services/T0/B0/x")
        await post(client, payload("g1"))
        await post(client, payload("g2"))
        await eventually(lambda: len(fake.delivered) == 2, timeout=15)
        first = fake.requests[0].at
        assert all(r.at - first >= 1.0 for r in fake.requests[1:])
        assert sample(client, "alert_bridge_rate_limited_total", channel="slack") == 1


async def test_discord_429_retry_after_in_the_body_is_honoured(aiohttp_client, tmp_path):
    async with FakeDiscord() as fake:
        body = json.dumps({"message": "You are being rate limited.", "retry_after": 1.2, "global": False})
        fake.script.append(Answer(429, body, {"Content-Type": "application/json"}))
        client = await _app(aiohttp_client, tmp_path, DISCORD_WEBHOOK_URL=f"{fake.url}/api/webhooks/1/tok")
        await post(client, payload("g1"))
        await eventually(lambda: len(fake.delivered) == 1, timeout=15)
        assert fake.requests[1].at - fake.requests[0].at >= 1.2


async def test_slack_permanent_error_is_dead_lettered(aiohttp_client, tmp_path):
    async with FakeSlack() as fake:
        fake.script.append(Answer(404, "no_service"))
        client = await _app(aiohttp_client, tmp_path, SLACK_WEBHOOK_URL=f"{fake.url}/services/T0/B0/x")
        await post(client, payload("g1"))
        await eventually(
            lambda: sample(client, "alert_bridge_deliveries_total", channel="slack", result="dead_lettered")
        )
        [dead] = (await (await client.get("/dead-letters")).json())["dead_letters"]
        assert dead["reason"].startswith("http_404")
