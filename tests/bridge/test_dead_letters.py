"""Dead letters through the real webhook channel: listed without secrets, retried on demand, guarded by auth."""

from __future__ import annotations

import json

import pytest

from bridge.app import create_app, reload
from bridge.channels import CHANNEL_TYPES
from bridge.config import load_config
from bridge.keys import STATE
from tests.bridge.test_dispatch import Destination, eventually, payload, post, sample

TOKEN = "dead-letter-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def dest(aiohttp_server):
    from aiohttp import web

    d = Destination(script=[(400, {})])
    app = web.Application()
    app.router.add_post("/hook/secret-part", d.handle)
    server = await aiohttp_server(app)
    d.url = str(server.make_url("/hook/secret-part"))
    return d


@pytest.fixture
async def client(aiohttp_client, tmp_path, dest):
    env = {"WEBHOOK_URL": dest.url, "BRIDGE_TOKEN": TOKEN, "BRIDGE_DATA_DIR": str(tmp_path / "data")}
    return await aiohttp_client(create_app(load_config(env, CHANNEL_TYPES), env=env))


async def _dead(client) -> list[dict]:
    resp = await client.get("/dead-letters", headers=AUTH)
    assert resp.status == 200
    return (await resp.json())["dead_letters"]


async def test_permanent_failure_is_listed_and_retried(client, dest):
    await post(client, payload(), headers=AUTH)
    await eventually(lambda: sample(client, "alert_bridge_dead_letters_total", channel="webhook", reason="http_400"))
    [row] = await _dead(client)
    assert row["channel"] == "webhook" and row["reason"] == "http_400" and row["attempts"] == 1
    assert row["group_key"] == payload()["groupKey"] and row["route"] == "default"
    assert "secret-part" not in json.dumps(row)

    resp = await client.post(f"/dead-letters/{row['id']}/retry", headers=AUTH)
    assert resp.status == 200 and (await resp.json())["channel"] == "webhook"
    await eventually(lambda: sample(client, "alert_bridge_deliveries_total", channel="webhook", result="delivered"))
    assert dest.bodies[1] == payload()  # the webhook forwards the original payload
    assert await _dead(client) == []
    assert (await client.post(f"/dead-letters/{row['id']}/retry", headers=AUTH)).status == 404


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        pytest.param("get", "/dead-letters", 401, id="list-no-token"),
        pytest.param("post", "/dead-letters/1/retry", 401, id="retry-no-token"),
    ],
)
async def test_dead_letters_need_auth(client, method, path, status):
    assert (await getattr(client, method)(path)).status == status


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        pytest.param("/dead-letters/abc/retry", 400, "must be an integer", id="not-a-number"),
        pytest.param("/dead-letters/12345/retry", 404, "no dead letter 12345", id="unknown"),
    ],
)
async def test_retry_bad_ids(client, path, status, message):
    resp = await client.post(path, headers=AUTH)
    assert resp.status == status
    assert message in (await resp.json())["error"]


async def test_bad_paging_is_400(client):
    assert (await client.get("/dead-letters?limit=x", headers=AUTH)).status == 400


async def test_removed_channel_dead_letters_its_pending_work(client, dest, tmp_path):
    dest.script = [(503, {})] * 1000
    await post(client, payload(), headers=AUTH)
    await eventually(lambda: dest.requests)
    state = client.app[STATE]
    state.env.pop("WEBHOOK_URL")  # the next reload has no webhook channel
    state.env["BRIDGE_CONSOLE"] = "false"
    assert await reload(client.app)
    [row] = await _dead(client)
    assert row["reason"] == "channel_removed"
    resp = await client.post(f"/dead-letters/{row['id']}/retry", headers=AUTH)
    assert resp.status == 409 and "not configured" in (await resp.json())["error"]
    assert [r["id"] for r in await _dead(client)] == [row["id"]]  # left as it was
