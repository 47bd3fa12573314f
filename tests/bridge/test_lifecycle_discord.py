"""One Discord message per alert group: posted once with wait=true, then edited (PATCH) as the group changes,
across a restart of the real bridge process too."""

from __future__ import annotations

import signal
import sqlite3

from bridge.app import create_app
from bridge.channels import CHANNEL_TYPES
from bridge.config import load_config
from tests.bridge.test_dispatch import eventually, payload, post
from tests.bridge.test_restart import _post
from tests.fakes.discord import FakeDiscord
from tests.reliability.support import run_bridge

HOOK = "/api/webhooks/1/tok"


def _firing_then_more_then_resolved(group: str = "g1") -> list[dict]:
    one = payload(group, alerts=1)
    two = payload(group, alerts=2)
    done = payload(group, status="resolved", alerts=2)
    return [one, two, done]


def _calls(fake: FakeDiscord) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in fake.delivered]


async def _app(aiohttp_client, tmp_path, **env: str):
    env = {"BRIDGE_DATA_DIR": str(tmp_path / "data"), "BRIDGE_RETRY_INITIAL": "0.1", **env}
    return await aiohttp_client(create_app(load_config(env, CHANNEL_TYPES)))


async def test_one_post_then_patches_of_the_same_message(aiohttp_client, tmp_path):
    async with FakeDiscord(limit=100) as fake:
        client = await _app(aiohttp_client, tmp_path, DISCORD_WEBHOOK_URL=fake.url + HOOK)
        firing, more, resolved = _firing_then_more_then_resolved()
        assert (await post(client, firing)).status == 200
        await eventually(lambda: len(fake.delivered) == 1)
        (message_id,) = fake.messages
        assert fake.messages[message_id]["embeds"][-1]["color"] == 0xD32F2F
        assert (await post(client, more)).status == 200
        await eventually(lambda: len(fake.delivered) == 2)
        assert len(fake.messages[message_id]["embeds"]) == 2 and "2 firing" in str(fake.messages[message_id])
        assert (await post(client, resolved)).status == 200
        await eventually(lambda: len(fake.delivered) == 3)
    assert _calls(fake) == [("POST", HOOK)] + [("PATCH", f"{HOOK}/messages/{message_id}")] * 2
    assert list(fake.messages) == [message_id]  # one message in the channel
    final = fake.messages[message_id]
    assert final["edits"] == 2
    assert all(e["color"] == 0x2E7D32 for e in final["embeds"])  # green: the colour follows the state
    assert "RESOLVED" in final["embeds"][0]["title"]
    assert final["content"] == ""  # no mention left on a resolved message


async def test_after_a_resolve_the_next_incident_is_a_new_message(aiohttp_client, tmp_path):
    async with FakeDiscord(limit=100) as fake:
        client = await _app(aiohttp_client, tmp_path, DISCORD_WEBHOOK_URL=fake.url + HOOK)
        firing, _, resolved = _firing_then_more_then_resolved()
        again = payload("g1", starts="2026-11-27T19:00:00.000Z")
        other = payload("g2")
        for i, body in enumerate([firing, other, resolved, again], start=1):
            assert (await post(client, body)).status == 200
            await eventually(lambda i=i: len(fake.delivered) == i)
    assert [m for m, _ in _calls(fake)] == ["POST", "POST", "PATCH", "POST"]
    assert len(fake.messages) == 3


async def test_a_deleted_message_is_posted_again(aiohttp_client, tmp_path):
    async with FakeDiscord(limit=100) as fake:
        client = await _app(aiohttp_client, tmp_path, DISCORD_WEBHOOK_URL=fake.url + HOOK)
        firing, more, _ = _firing_then_more_then_resolved()
        await post(client, firing)
        await eventually(lambda: len(fake.delivered) == 1)
        fake.messages.clear()  # someone deleted it in Discord
        await post(client, more)
        await eventually(lambda: len(fake.delivered) == 2)
    assert [(r.method, r.status) for r in fake.requests] == [("POST", 200), ("PATCH", 404), ("POST", 200)]
    assert len(fake.messages) == 1


async def test_update_in_place_off_posts_every_notification(aiohttp_client, tmp_path):
    config = tmp_path / "bridge.yml"
    async with FakeDiscord(limit=100) as fake:
        url = fake.url + HOOK
        config.write_text(f"channels:\n  d: {{type: discord, webhook_url: '{url}', update_in_place: false}}\n")
        client = await _app(aiohttp_client, tmp_path, BRIDGE_CONFIG=str(config))
        for i, body in enumerate(_firing_then_more_then_resolved(), start=1):
            await post(client, body)
            await eventually(lambda i=i: len(fake.delivered) == i)
    assert [m for m, _ in _calls(fake)] == ["POST", "POST", "POST"]


def _count(tmp_path, sql: str) -> int:
    db = sqlite3.connect(tmp_path / "data" / "outbox.db")
    try:
        return db.execute(sql).fetchone()[0]
    finally:
        db.close()


def _delivered(tmp_path) -> int:
    return _count(tmp_path, "SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")


def _refs(tmp_path) -> int:
    return _count(tmp_path, "SELECT COUNT(*) FROM message_refs")


async def test_a_resolve_after_a_restart_still_edits_the_original(tmp_path):
    firing, more, resolved = _firing_then_more_then_resolved()
    async with FakeDiscord(limit=100) as fake:
        env = {"DISCORD_WEBHOOK_URL": fake.url + HOOK}
        async with run_bridge(tmp_path, **env) as b:
            proc, url = b.proc, b.url
            assert await _post(url, firing) == 200
            await eventually(lambda: len(fake.delivered) == 1)
            assert await _post(url, more) == 200
            # Killed once the outbox knows both went out (else at-least-once rightly sends the edit again).
            await eventually(lambda: _delivered(tmp_path) == 2)
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
        async with run_bridge(tmp_path, **env) as b:
            proc, url = b.proc, b.url
            assert await _post(url, resolved) == 200
            await eventually(lambda: len(fake.delivered) == 3, timeout=15)
            # The group resolved: its reference goes, so a new incident starts a new message.
            await eventually(lambda: _refs(tmp_path) == 0)
    (message_id,) = fake.messages
    assert _calls(fake) == [("POST", HOOK)] + [("PATCH", f"{HOOK}/messages/{message_id}")] * 2
    assert all(e["color"] == 0x2E7D32 for e in fake.messages[message_id]["embeds"])
