"""Latest state wins: a notification still queued for a channel is superseded by a newer one of its group.

The superseded one is kept in the outbox (state `superseded`), counted, and never sent; the newer message
still says when the group fired, and a resolved one never reads FIRING.
"""

from __future__ import annotations

import json

import pytest

from bridge.app import channel_context, create_app
from bridge.channels import CHANNEL_TYPES, create_channel
from bridge.config import BridgeConfig
from bridge.keys import OUTBOX
from bridge.model import Pace
from bridge.payload import parse_notification
from tests.bridge.test_dispatch import destination as destination  # the fixture
from tests.bridge.test_dispatch import eventually, factory, payload, post, sample, test_config


async def test_queued_firing_messages_are_superseded_by_the_resolve(aiohttp_client, tmp_path, destination):
    # One message per 0.4 s: five firing groups queue up behind the first.
    app = create_app(test_config(tmp_path), channel_factory=factory(destination.url, pace=Pace(1, 0.4)))
    client = await aiohttp_client(app)
    groups = [f"g{i}" for i in range(5)]
    for g in groups:
        assert (await post(client, payload(g))).status == 200
    await eventually(lambda: len(destination.requests) >= 1)
    for g in groups:
        assert (await post(client, payload(g, status="resolved"))).status == 200
    await eventually(lambda: sum(b["status"] == "resolved" for b in destination.bodies) == 5)
    sent = [(b["group"], b["status"]) for b in destination.bodies]
    first = sent[0]
    assert first[1] == "firing"
    # Nothing fired for a group after its resolve was accepted, except what was already on the wire.
    assert [s for s in sent if s[1] == "firing"] == [first]
    counts = await client.app[OUTBOX].counts()
    assert counts == {"delivered": 6, "superseded": 4}
    assert sample(client, "alert_bridge_superseded_total", channel="hook") == 4


async def test_a_notification_being_sent_is_not_superseded(aiohttp_client, tmp_path, destination):
    destination.script = [(503, {})]  # the first attempt fails: the delivery is in flight, then backs off
    app = create_app(test_config(tmp_path, retry_initial=0.3, retry_max=0.3), channel_factory=factory(destination.url))
    client = await aiohttp_client(app)
    assert (await post(client, payload("g1"))).status == 200
    await eventually(lambda: len(destination.requests) == 1)
    # Backing off is "still queued": the resolve replaces it.
    assert (await post(client, payload("g1", status="resolved"))).status == 200
    await eventually(lambda: len(destination.requests) == 2)
    assert [b["status"] for b in destination.bodies] == ["firing", "resolved"]
    await eventually(lambda: _counts_are(client, {"delivered": 1, "superseded": 1}))


async def _counts_are(client, expected: dict[str, int]) -> bool:
    return await client.app[OUTBOX].counts() == expected


def _text(body: object) -> str:
    if hasattr(body, "as_string"):
        return body.as_string()
    return body if isinstance(body, str) else json.dumps(body, ensure_ascii=False)


@pytest.mark.parametrize("kind", sorted(set(CHANNEL_TYPES) - {"webhook"}))
def test_the_resolve_that_wins_still_says_when_the_group_fired(kind):
    config = BridgeConfig()
    settings = CHANNEL_TYPES[kind].settings.model_validate({"type": kind, **CHANNEL_TYPES[kind].placeholder})
    channel = create_channel(kind, settings, channel_context(config, None))
    notification = parse_notification(payload("g1", status="resolved", alerts=3))
    text = "\n".join(_text(m.body) for m in channel.render(notification))
    assert "RESOLVED" in text and "FIRING" not in text
    assert "2026-11-27 18:03:19" in text  # startsAt, shown in UTC
