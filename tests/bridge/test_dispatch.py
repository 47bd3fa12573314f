"""The dispatcher against a real local HTTP destination: retries, Retry-After, pacing, order, dead letters.

Also home of the helpers other bridge tests import: payloads, the scriptable destination, a test channel.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from bridge.app import create_app
from bridge.config import BridgeConfig
from bridge.dispatch import IN_FLIGHT_MAX
from bridge.keys import DISPATCHER, OUTBOX, STATE
from bridge.model import ChannelContext, ChannelSettings, Message, Notification, Outcome, Pace, Result
from bridge.routing import Routing

# ---------------------------------------------------------------- helpers shared by the bridge tests


def payload(
    group: str = "g1",
    status: str = "firing",
    alerts: int = 1,
    severity: str = "critical",
    starts: str = "2026-11-27T18:03:19.553Z",
    **labels: str,
) -> dict[str, Any]:
    """A v4 webhook payload for one alert group."""
    items = []
    for i in range(alerts):
        items.append(
            {
                "status": status,
                "labels": {
                    "alertname": "LLMHighFailureRate",
                    "severity": severity,
                    "group": group,
                    "instance": f"i{i}",
                    **labels,
                },
                "annotations": {"summary": f"alert {i} of {group}", "description": "failure ratio above 5%"},
                "startsAt": starts,
                "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-27T18:13:19.553Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": f"{group}-{i}",
            }
        )
    return {
        "receiver": "bridge",
        "status": status,
        "alerts": items,
        "groupLabels": {"group": group},
        "commonLabels": {"severity": severity, **labels},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{group="{group}"}}',
        "truncatedAlerts": 0,
    }


@dataclass
class Destination:
    """A tiny real HTTP server standing in for a platform: records arrivals, answers from a script."""

    requests: list[tuple[float, Any]] = field(default_factory=list)
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)  # answers to use first, in order
    default: tuple[int, dict[str, str]] = (200, {})
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append((time.time(), body))
        status, headers = self.script.pop(0) if self.script else self.default
        return web.Response(status=status, headers=headers, text="ok" if status < 300 else "error")

    @property
    def bodies(self) -> list[Any]:
        return [b for _, b in self.requests]


@pytest.fixture
async def destination(aiohttp_server):
    dest = Destination()
    app = web.Application()
    app.router.add_post("/hook", dest.handle)
    server = await aiohttp_server(app)
    dest.url = str(server.make_url("/hook"))
    return dest


class HttpChannel:
    """A minimal channel for core tests: one JSON POST per part; classifies like the real channels."""

    type = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        ctx: ChannelContext,
        *,
        pace: Pace | None = None,
        parts: int = 1,
        truncated: bool = False,
    ) -> None:
        self.name, self.lane, self.pace = name, f"test:{url}", pace
        self._url, self._ctx, self._parts, self._truncated = url, ctx, parts, truncated

    def describe(self) -> str:
        return "127.0.0.1/***"

    def violations(self, message: Message) -> list[str]:
        return []

    def render(self, notification: Notification) -> list[Message]:
        return [
            Message(
                body={
                    "group": notification.group_key,
                    "status": notification.status,
                    "part": i,
                    "alerts": [a.fingerprint for a in notification.alerts],
                },
                part=i,
                parts=self._parts,
                truncated=self._truncated,
            )
            for i in range(1, self._parts + 1)
        ]

    async def send(self, message: Message) -> Result:
        try:
            async with self._ctx.session.post(self._url, json=message.body) as resp:
                await resp.read()
                h = resp.headers
                remaining = int(h["X-RateLimit-Remaining"]) if "X-RateLimit-Remaining" in h else None
                reset = float(h["X-RateLimit-Reset-After"]) if "X-RateLimit-Reset-After" in h else None
                if resp.status < 300:
                    return Result(Outcome.DELIVERED, remaining=remaining, reset_after=reset)
                retry_after = float(h["Retry-After"]) if "Retry-After" in h else None
                if resp.status == 429 or resp.status >= 500:
                    return Result(Outcome.RETRY, f"http_{resp.status}", retry_after=retry_after)
                return Result(Outcome.PERMANENT, f"http_{resp.status}")
        except aiohttp.ClientError:
            return Result(Outcome.RETRY, "connection_error")

    async def close(self) -> None:
        return None


def test_config(
    tmp_path, channels: tuple[str, ...] = ("hook",), send_resolved: bool = True, **overrides: Any
) -> BridgeConfig:
    """A BridgeConfig for app tests: data under tmp_path, fast retries, `channels` all broadcast."""
    settings = {n: ChannelSettings(type="webhook", send_resolved=send_resolved) for n in channels}
    values = {
        "data_dir": tmp_path / "data",
        "retry_initial": 0.05,
        "retry_max": 0.2,
        "shutdown_grace": 2.0,
        "channels": settings,
        "routing": Routing(broadcast=channels),
        **overrides,
    }
    return BridgeConfig(**values)


test_config.__test__ = False  # a helper, not a test


def factory(url: str, **options: Any) -> Callable[..., HttpChannel]:
    def make(name: str, settings: ChannelSettings, ctx: ChannelContext) -> HttpChannel:
        return HttpChannel(name, url, ctx, **options)

    return make


async def eventually(check: Callable[[], Any], timeout: float = 10.0) -> None:
    """Poll until `check()` is truthy (async checks awaited)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def sample(client, name: str, **labels: str) -> float | None:
    return client.app[STATE].metrics.registry.get_sample_value(name, labels)


async def post(client, body: Any, path: str = "/alerts", headers: dict[str, str] | None = None):
    return await client.post(
        path, data=json.dumps(body), headers={"Content-Type": "application/json", **(headers or {})}
    )


# ---------------------------------------------------------------- tests


async def test_5xx_is_retried_until_delivered(aiohttp_client, tmp_path, destination):
    destination.script = [(500, {}), (502, {}), (503, {})]
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=factory(destination.url)))
    assert (await post(client, payload())).status == 200
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="hook", result="delivered"))
    assert len(destination.requests) == 4
    assert sample(client, "alert_bridge_delivery_attempts_total", channel="hook") == 4
    assert sample(client, "alert_bridge_delivery_latency_seconds_count", channel="hook") == 1
    assert await client.app[OUTBOX].counts() == {"delivered": 1}


async def test_429_waits_at_least_retry_after(aiohttp_client, tmp_path, destination):
    destination.script = [(429, {"Retry-After": "1"})]
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=factory(destination.url)))
    await post(client, payload("g1"))
    await post(client, payload("g2"))  # another group on the same destination must wait too
    await eventually(lambda: len(destination.requests) == 3)
    first, second, third = (t for t, _ in destination.requests)
    assert second - first >= 1.0 and third - first >= 1.0
    assert sample(client, "alert_bridge_rate_limited_total", channel="hook") == 1
    assert sorted(b["group"] for b in destination.bodies[1:]) == ['{}:{group="g1"}', '{}:{group="g2"}']


async def test_rate_limit_headers_pace_the_lane(aiohttp_client, tmp_path, destination):
    destination.script = [(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset-After": "0.6"})]
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=factory(destination.url)))
    await post(client, payload("g1"))
    await post(client, payload("g2"))
    await eventually(lambda: len(destination.requests) == 2)
    assert destination.requests[1][0] - destination.requests[0][0] >= 0.6
    assert sample(client, "alert_bridge_rate_limited_total", channel="hook") == 0  # paced, never bounced


async def test_pace_spaces_messages(aiohttp_client, tmp_path, destination):
    make = factory(destination.url, pace=Pace(messages=2, per_seconds=0.5))
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=make))
    for g in ("g1", "g2", "g3", "g4"):
        await post(client, payload(g))
    await eventually(lambda: len(destination.requests) == 4)
    times = [t for t, _ in destination.requests]
    assert times[2] - times[0] >= 0.5 and times[3] - times[1] >= 0.5


async def test_group_order_is_kept_while_its_head_retries(aiohttp_client, tmp_path, destination):
    destination.script = [(500, {}), (500, {})]
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=factory(destination.url)))
    await post(client, payload("g1", "firing"))
    await post(client, payload("g1", "resolved"))
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="hook", result="delivered") == 2)
    statuses = [b["status"] for b in destination.bodies]
    assert statuses == ["firing", "firing", "firing", "resolved"]


async def test_split_message_resumes_at_the_next_part(aiohttp_client, tmp_path, destination):
    destination.script = [(200, {}), (500, {})]
    make = factory(destination.url, parts=3, truncated=True)
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=make))
    await post(client, payload())
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="hook", result="delivered"))
    assert [b["part"] for b in destination.bodies] == [1, 2, 2, 3]
    assert sample(client, "alert_bridge_truncations_total", channel="hook") == 3


async def test_permanent_4xx_is_dead_lettered_then_retried_on_demand(aiohttp_client, tmp_path, destination):
    destination.script = [(400, {})]
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=factory(destination.url)))
    await post(client, payload())
    await eventually(lambda: sample(client, "alert_bridge_dead_letters_total", channel="hook", reason="http_400"))
    assert sample(client, "alert_bridge_deliveries_total", channel="hook", result="dead_lettered") == 1
    listing = await (await client.get("/dead-letters")).json()
    [dead] = listing["dead_letters"]
    assert dead["reason"] == "http_400" and dead["channel"] == "hook" and dead["status"] == "firing"
    resp = await client.post(f"/dead-letters/{dead['id']}/retry")
    assert resp.status == 200
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="hook", result="delivered"))
    assert len(destination.requests) == 2
    assert (await (await client.get("/dead-letters")).json())["dead_letters"] == []


async def test_too_old_is_dead_lettered_as_expired(aiohttp_client, tmp_path, destination):
    destination.default = (503, {})
    config = test_config(tmp_path, max_delivery_age=0.3, retry_initial=0.1, retry_max=0.1)
    client = await aiohttp_client(create_app(config, channel_factory=factory(destination.url)))
    await post(client, payload())
    await eventually(lambda: sample(client, "alert_bridge_dead_letters_total", channel="hook", reason="expired"))
    assert await client.app[OUTBOX].counts() == {"dead": 1}


async def test_resolved_is_not_sent_to_channels_that_do_not_want_it(aiohttp_client, tmp_path, destination):
    config = test_config(tmp_path, send_resolved=False)
    client = await aiohttp_client(create_app(config, channel_factory=factory(destination.url)))
    await post(client, payload("g1", "firing"))
    await post(client, payload("g1", "resolved"))
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="hook", result="delivered"))
    await asyncio.sleep(0.2)
    assert [b["status"] for b in destination.bodies] == ["firing"]


async def test_channel_series_start_at_zero(aiohttp_client, tmp_path, destination):
    config = test_config(tmp_path, channels=("hook", "other"))
    client = await aiohttp_client(create_app(config, channel_factory=factory(destination.url)))
    text = await (await client.get("/metrics")).text()
    for name in ("hook", "other"):
        assert f'alert_bridge_deliveries_total{{channel="{name}",result="delivered"}} 0.0' in text
        assert f'alert_bridge_deliveries_total{{channel="{name}",result="dead_lettered"}} 0.0' in text
        assert f'alert_bridge_delivery_attempts_total{{channel="{name}"}} 0.0' in text
        assert f'alert_bridge_queue_depth{{channel="{name}"}} 0.0' in text
        assert f'alert_bridge_oldest_pending_age_seconds{{channel="{name}"}} 0.0' in text
        assert f'alert_bridge_rate_limited_total{{channel="{name}"}} 0.0' in text
        assert f'alert_bridge_truncations_total{{channel="{name}"}} 0.0' in text
        assert f'alert_bridge_delivery_latency_seconds_count{{channel="{name}"}} 0.0' in text
    assert 'alert_bridge_notifications_received_total{route="default",status="firing"} 0.0' in text
    assert 'alert_bridge_notifications_rejected_total{reason="unauthorized"} 0.0' in text


async def test_queue_depth_and_age_while_the_destination_is_down(aiohttp_client, tmp_path, destination):
    destination.default = (503, {})
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=factory(destination.url)))
    await post(client, payload("g1"))
    await post(client, payload("g2"))
    await eventually(lambda: len(destination.requests) >= 2)
    text = await (await client.get("/metrics")).text()
    assert 'alert_bridge_queue_depth{channel="hook"} 2.0' in text
    age = sample(client, "alert_bridge_oldest_pending_age_seconds", channel="hook")
    assert age is not None and age > 0


async def test_intakes_decoded_notification_serves_each_channel_once_then_is_dropped(
    aiohttp_client, tmp_path, destination
):
    destination.script = [(503, {})]  # one channel's first attempt fails: its retry decodes the stored body
    config = test_config(tmp_path, channels=("a", "b"))
    client = await aiohttp_client(create_app(config, channel_factory=factory(destination.url)))
    assert (await post(client, payload("g1", alerts=3))).status == 200
    await eventually(lambda: len(destination.requests) == 3)
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="b", result="delivered"))
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="a", result="delivered"))
    for body in destination.bodies:
        assert body["group"] == '{}:{group="g1"}' and body["alerts"] == ["g1-0", "g1-1", "g1-2"]
    assert client.app[DISPATCHER]._decoded == {}  # nothing kept once both deliveries took it


async def _stored(tmp_path, body: bytes, channel: str):
    """An outbox holding one notification for `channel`, stored as a restart would find it (nothing decoded)."""
    from bridge.outbox import Outbox

    box = await Outbox.open(tmp_path / "data")
    common = {"route": "default", "status": "firing", "dedupe_window": 0.0, "max_queue": 100}
    await box.enqueue(group_key="g1", dedupe_key="k1", body=body, channels=[channel], **common)
    return box


async def _counts_are(box, counts: dict[str, int]) -> bool:
    return await box.counts() == counts


async def test_a_body_sent_as_received_is_not_decoded_on_its_way(tmp_path, destination, monkeypatch):
    from bridge.channels import create_channel
    from bridge.channels.webhook import WebhookSettings
    from bridge.dispatch import Dispatcher
    from bridge.metrics import BridgeMetrics

    def no_decoding(body: bytes) -> Notification:
        raise AssertionError("decoded a body the channel forwards as received")

    monkeypatch.setattr("bridge.dispatch.decode_notification", no_decoding)
    body = json.dumps(payload("g1"), indent=1).encode()  # spacing a decode and re-encode would not keep
    box = await _stored(tmp_path, body, "hook")
    async with aiohttp.ClientSession() as session:
        channel = create_channel("webhook", WebhookSettings(url=destination.url), ChannelContext(session=session))
        dispatcher = Dispatcher(box, BridgeMetrics())
        await dispatcher.start({"hook": channel})
        try:
            await eventually(lambda: len(destination.requests) == 1)
            await eventually(lambda: _counts_are(box, {"delivered": 1}))
        finally:
            await dispatcher.stop(1.0)
            await box.close()
    assert destination.bodies == [payload("g1")]


async def test_a_stored_body_that_no_longer_decodes_is_dead_lettered(tmp_path, destination):
    from bridge.dispatch import Dispatcher
    from bridge.metrics import BridgeMetrics

    box = await _stored(tmp_path, b'{"version": "4", "alerts": []}', "hook")
    dispatcher = Dispatcher(box, BridgeMetrics())
    async with aiohttp.ClientSession() as session:
        await dispatcher.start({"hook": HttpChannel("hook", destination.url, ChannelContext(session=session))})
        try:
            await eventually(lambda: _counts_are(box, {"dead": 1}))
            (dead,) = await box.dead_letters()
        finally:
            await dispatcher.stop(1.0)
            await box.close()
    assert dead["reason"] == "bad_stored_payload" and destination.requests == []


async def test_intake_keeps_a_decoded_notification_only_for_channels_that_render_it(tmp_path, destination):
    from bridge.channels import create_channel
    from bridge.channels.webhook import WebhookSettings
    from bridge.dispatch import Dispatcher
    from bridge.metrics import BridgeMetrics
    from bridge.payload import parse_notification

    ctx = ChannelContext(session=None)
    dispatcher = Dispatcher(None, BridgeMetrics())  # remember() needs no outbox
    dispatcher.channels = {
        "forwarder": create_channel("webhook", WebhookSettings(url=destination.url), ctx),
        "renderer": HttpChannel("renderer", destination.url, ctx),
    }
    notification = parse_notification(payload("g1", alerts=20))
    dispatcher.remember(1, notification, ["forwarder"])
    dispatcher.remember(2, notification, ["forwarder", "renderer"])
    assert dispatcher._decoded == {2: (notification, 1)}


@pytest.mark.parametrize(("storing", "most"), [(0, IN_FLIGHT_MAX), (1, 1)])
async def test_a_lane_sends_ahead_of_its_records_only_while_no_notification_waits_for_its_commit(
    tmp_path, destination, monkeypatch, storing, most
):
    from bridge.channels import create_channel
    from bridge.channels.webhook import WebhookSettings
    from bridge.dispatch import Dispatcher
    from bridge.metrics import BridgeMetrics
    from bridge.outbox import Outbox

    box = await Outbox.open(tmp_path / "data")
    common = {"route": "default", "status": "firing", "dedupe_window": 0.0, "max_queue": 100}
    for i in range(8):
        body = json.dumps(payload(f"g{i}")).encode()
        await box.enqueue(group_key=f"g{i}", dedupe_key=f"k{i}", body=body, channels=["hook"], **common)
    commit, delivered = box._commit, box.delivered
    written: list[asyncio.Future[None]] = []
    unrecorded: list[int] = []  # at each send done: those sent whose "delivered" is not on disk yet

    def slow_commit():  # in the outbox thread, as an fsync would be
        time.sleep(0.05)
        commit()

    def tracked(*args, **kwargs):
        written.append(delivered(*args, **kwargs))
        unrecorded.append(sum(1 for w in written if not w.done()))
        return written[-1]

    monkeypatch.setattr(box, "_commit", slow_commit)
    monkeypatch.setattr(box, "delivered", tracked)
    box.storing = storing  # as while intake waits for the commit of notifications
    async with aiohttp.ClientSession() as session:
        channel = create_channel("webhook", WebhookSettings(url=destination.url), ChannelContext(session=session))
        dispatcher = Dispatcher(box, BridgeMetrics())
        await dispatcher.start({"hook": channel})
        try:
            await eventually(lambda: _counts_are(box, {"delivered": 8}), timeout=10)
        finally:
            await dispatcher.stop(1.0)
            box.storing = 0
            await box.close()
    assert max(unrecorded) == most
