"""Intake: auth, size cap, JSON and shape validation, commit before 2xx, dedupe, 503 when it cannot store."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets

import pytest

from bridge.app import create_app
from bridge.keys import OUTBOX
from tests.bridge.test_dispatch import destination as destination  # the fixture
from tests.bridge.test_dispatch import eventually, factory, payload, post, sample, test_config

TOKEN = "s3cret-token-value"


@pytest.fixture
async def client(aiohttp_client, tmp_path, destination):
    config = test_config(tmp_path, token=TOKEN, max_body=64 * 1024)
    return await aiohttp_client(create_app(config, channel_factory=factory(destination.url)))


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def basic(password: str = TOKEN, user: str = "alertmanager") -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def stored(client) -> int:
    return sum((await client.app[OUTBOX].counts()).values())


@pytest.mark.parametrize("headers", [pytest.param(bearer(), id="bearer"), pytest.param(basic(), id="basic")])
async def test_accepted_with_token(client, destination, headers):
    resp = await post(client, payload(), headers=headers)
    assert resp.status == 200
    assert (await resp.json())["status"] == "accepted"
    assert await stored(client) == 1  # committed before the answer
    await eventually(lambda: len(destination.requests) == 1)
    assert sample(client, "alert_bridge_notifications_received_total", route="default", status="firing") == 1


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="missing"),
        pytest.param(bearer("wrong"), id="wrong-bearer"),
        pytest.param(bearer(TOKEN + "x"), id="longer-bearer"),
        pytest.param(basic("wrong"), id="wrong-basic"),
        pytest.param({"Authorization": "Basic !!notbase64"}, id="garbled-basic"),
        pytest.param({"Authorization": TOKEN}, id="no-scheme"),
    ],
)
async def test_refused_without_the_right_token(client, headers):
    resp = await post(client, payload(), headers=headers)
    assert resp.status == 401
    body = await resp.json()
    assert "credentials" in body["error"] and TOKEN not in json.dumps(body)
    assert await stored(client) == 0
    assert sample(client, "alert_bridge_notifications_rejected_total", reason="unauthorized") == 1


@pytest.mark.parametrize("path", ["/metrics", "/healthz", "/readyz"])
async def test_health_and_metrics_need_no_token(client, path):
    assert (await client.get(path)).status == 200


async def test_dead_letters_need_the_token(client):
    assert (await client.get("/dead-letters")).status == 401
    assert (await client.get("/dead-letters", headers=bearer())).status == 200


BAD = [
    pytest.param(b"{not json", "bad_json", "not valid JSON", id="malformed-json"),
    pytest.param(b"\xff\xfe", "bad_json", "not valid JSON", id="not-utf8"),
    pytest.param(b"[]", "bad_payload", "Expected `object`, got `array`", id="array"),
    pytest.param(json.dumps({**payload(), "version": "3"}).encode(), "bad_payload", "version", id="version"),
    pytest.param(
        json.dumps({k: v for k, v in payload().items() if k != "alerts"}).encode(),
        "bad_payload",
        "missing required field `alerts`",
        id="no-alerts",
    ),
    pytest.param(
        json.dumps({**payload(), "alerts": []}).encode(),
        "bad_payload",
        "of length >= 1 - at `$.alerts`",
        id="empty-alerts",
    ),
    pytest.param(
        json.dumps({**payload(), "status": 1}).encode(),
        "bad_payload",
        "Expected `str`, got `int` - at `$.status`",
        id="status-type",
    ),
    pytest.param(
        json.dumps({**payload(), "alerts": [{**payload()["alerts"][0], "labels": {"a": 1}}]}).encode(),
        "bad_payload",
        "Expected `str`, got `int` - at `$.alerts[0].labels",
        id="label-type",
    ),
    pytest.param(
        json.dumps({**payload(), "alerts": [{**payload()["alerts"][0], "startsAt": "yesterday"}]}).encode(),
        "bad_payload",
        "alerts[0].startsAt",
        id="time",
    ),
    pytest.param(
        json.dumps({**payload(), "alerts": [{**payload()["alerts"][0], "startsAt": "0001-01-01T00:00:00Z"}]}).encode(),
        "bad_payload",
        "`startsAt` is not set - at `$.alerts[0]`",
        id="zero-start",
    ),
]


async def test_optional_fields_may_be_null(client):
    """Some senders write null for what they leave out: read as absent, as before the wire form was typed."""
    body = payload()
    body.update(receiver=None, groupLabels=None, commonAnnotations=None, externalURL=None, truncatedAlerts=None)
    body["alerts"][0].update(annotations=None, endsAt=None, generatorURL=None, fingerprint=None)
    resp = await post(client, body, headers=bearer())
    assert resp.status == 200, await resp.text()
    assert await stored(client) == 1


@pytest.mark.parametrize(("body", "reason", "message"), BAD)
async def test_bad_input_is_a_4xx_naming_the_problem(client, body, reason, message):
    resp = await client.post("/alerts", data=body, headers={**bearer(), "Content-Type": "application/json"})
    assert resp.status == 400
    assert message in (await resp.json())["error"]
    assert await stored(client) == 0
    assert sample(client, "alert_bridge_notifications_rejected_total", reason=reason) == 1


async def test_oversized_body_is_413(client):
    big = payload(alerts=1)
    big["alerts"][0]["annotations"]["description"] = "x" * 70_000
    resp = await post(client, big, headers=bearer())
    assert resp.status == 413
    assert "BRIDGE_MAX_BODY" in (await resp.json())["error"]
    assert await stored(client) == 0
    assert sample(client, "alert_bridge_notifications_rejected_total", reason="too_large") == 1


async def test_oversized_chunked_body_is_413(client):
    async def chunks():
        for _ in range(20):
            yield b"x" * 8192

    resp = await client.post("/alerts", data=chunks(), headers=bearer())
    assert resp.status == 413
    assert await stored(client) == 0


async def test_unknown_fields_are_ignored(client):
    body = {**payload(), "future": {"x": 1}}
    body["alerts"][0]["extra"] = [1, 2]
    assert (await post(client, body, headers=bearer())).status == 200


async def test_repeat_within_window_is_200_and_delivered_once(client, destination):
    first = await post(client, payload(), headers=bearer())
    again = await post(client, payload(), headers=bearer())
    assert first.status == again.status == 200
    assert (await again.json())["status"] == "duplicate"
    await eventually(lambda: len(destination.requests) == 1)
    resolved = await post(client, payload(status="resolved"), headers=bearer())
    assert (await resolved.json())["status"] == "accepted"
    await eventually(lambda: len(destination.requests) == 2)
    assert sample(client, "alert_bridge_notifications_received_total", route="default", status="firing") == 1


async def test_unknown_route_goes_to_default_and_is_named_in_metrics(client, destination):
    resp = await post(client, payload(), path="/alerts/critical", headers=bearer())
    assert resp.status == 200
    await eventually(lambda: len(destination.requests) == 1)
    assert sample(client, "alert_bridge_notifications_received_total", route="critical", status="firing") == 1


async def test_queue_over_max_is_503_so_alertmanager_retries(aiohttp_client, tmp_path, destination):
    destination.default = (503, {})
    config = test_config(tmp_path, max_queue=2, retry_initial=30.0, retry_max=30.0)
    client = await aiohttp_client(create_app(config, channel_factory=factory(destination.url)))
    assert (await post(client, payload("g1"))).status == 200
    assert (await post(client, payload("g2"))).status == 200
    resp = await post(client, payload("g3"))
    assert resp.status == 503
    assert "BRIDGE_MAX_QUEUE" in (await resp.json())["error"]
    assert sample(client, "alert_bridge_notifications_rejected_total", reason="queue_full") == 1
    assert await stored(client) == 2


async def test_store_failure_is_503(client):
    outbox = client.app[OUTBOX]
    await outbox._run(lambda: outbox._db.execute("PRAGMA max_page_count = 1"))  # a real SQLITE_FULL
    big = payload(alerts=2)
    # Random text does not compress away: the body needs new pages, which the page limit refuses.
    big["alerts"][0]["annotations"]["description"] = secrets.token_urlsafe(12_000)
    resp = await post(client, big, headers=bearer())
    assert resp.status == 503
    assert sample(client, "alert_bridge_notifications_rejected_total", reason="store_failed") == 1


async def test_readyz_reports_an_unwritable_outbox(client):
    assert (await client.get("/readyz")).status == 200
    outbox = client.app[OUTBOX]
    await outbox._run(lambda: outbox._db.execute("PRAGMA query_only = 1"))
    assert (await client.get("/readyz")).status == 503
    assert (await client.get("/healthz")).status == 200


async def test_500_alerts_of_10kb_fit_the_default_body_cap(aiohttp_client, tmp_path, destination):
    client = await aiohttp_client(create_app(test_config(tmp_path), channel_factory=factory(destination.url)))
    body = payload(alerts=500)
    for a in body["alerts"]:
        a["annotations"]["description"] = "d" * 10_000
    resp = await post(client, body)
    assert resp.status == 200
    await eventually(lambda: len(destination.requests) == 1)
    assert len(destination.bodies[0]["alerts"]) == 500


async def test_a_byte_for_byte_repeat_is_recognised_before_decoding(aiohttp_client, tmp_path, destination):
    config = test_config(tmp_path, dedupe_window=0.5)
    client = await aiohttp_client(create_app(config, channel_factory=factory(destination.url)))
    body = json.dumps(payload()).encode()
    headers = {"Content-Type": "application/json"}
    assert (await (await client.post("/alerts", data=body, headers=headers)).json())["status"] == "accepted"

    async def no_store(**_: object) -> None:
        raise AssertionError("a byte-for-byte repeat must not reach the outbox")

    real = client.app[OUTBOX].enqueue
    client.app[OUTBOX].enqueue = no_store  # type: ignore[method-assign]
    again = await client.post("/alerts", data=body, headers=headers)
    assert again.status == 200 and (await again.json())["status"] == "duplicate"
    client.app[OUTBOX].enqueue = real  # type: ignore[method-assign]
    # Other bytes of the same notification still go to the outbox, which knows it by its dedupe key.
    spaced = await client.post("/alerts", data=json.dumps(payload(), indent=1), headers=headers)
    assert (await spaced.json())["status"] == "duplicate"
    # The same bytes on another route are another notification; past the window, a new one again.
    other = await client.post("/alerts/critical", data=body, headers=headers)
    assert (await other.json())["status"] == "accepted"
    await asyncio.sleep(0.6)
    later = await client.post("/alerts", data=body, headers=headers)
    assert (await later.json())["status"] == "accepted"
    await eventually(lambda: len(destination.requests) == 3)
