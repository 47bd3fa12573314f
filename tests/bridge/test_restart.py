"""The real `python -m bridge` process: kill -9 with pending deliveries, SIGTERM, SIGHUP reload."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.bridge.test_dispatch import Destination, eventually, payload
from tests.reliability.support import TOKEN, run_bridge

SECRET_PATH = "T0/B0/webhook-secret-part"


async def _serve(aiohttp_server, dest: Destination) -> Destination:
    app = web.Application()
    app.router.add_post(f"/hook/{SECRET_PATH}", dest.handle)
    server = await aiohttp_server(app)
    dest.url = str(server.make_url(f"/hook/{SECRET_PATH}"))
    return dest


async def _post(url: str, body: dict, path: str = "/alerts") -> int:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url + path, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as r,
    ):
        return r.status


def _states(tmp_path: Path) -> dict[str, int]:
    db = sqlite3.connect(tmp_path / "data" / "outbox.db")
    try:
        return dict(db.execute("SELECT state, COUNT(*) FROM deliveries GROUP BY state").fetchall())
    finally:
        db.close()


def _groups(dest: Destination) -> set[str]:
    return {b["groupKey"] for b in dest.bodies}


async def test_kill_9_with_pending_deliveries_then_all_delivered(tmp_path, aiohttp_server):
    dest = await _serve(aiohttp_server, Destination(default=(503, {})))
    groups = [f"g{i}" for i in range(5)]
    async with run_bridge(tmp_path, WEBHOOK_URL=dest.url) as b:
        proc, url = b.proc, b.url
        for g in groups:
            assert await _post(url, payload(g)) == 200
        await eventually(lambda: len(dest.requests) >= 5)
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert _states(tmp_path) == {"pending": 5}
    dest.default, dest.requests = (200, {}), []
    async with run_bridge(tmp_path, WEBHOOK_URL=dest.url):
        await eventually(lambda: len(_groups(dest)) == 5, timeout=15)
        # The last "delivered" is written just after the destination answered: wait for it before stopping.
        await eventually(lambda: _states(tmp_path) == {"delivered": 5}, timeout=15)
    assert _groups(dest) == {payload(g)["groupKey"] for g in groups}


async def test_sigterm_stops_intake_and_leaves_the_rest_in_the_outbox(tmp_path, aiohttp_server):
    dest = await _serve(aiohttp_server, Destination(default=(503, {})))
    async with run_bridge(tmp_path, WEBHOOK_URL=dest.url) as b:
        proc, url = b.proc, b.url
        for g in ("a", "b"):
            assert await _post(url, payload(g)) == 200
        await eventually(lambda: len(dest.requests) >= 2)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 15) == 0
        with pytest.raises(aiohttp.ClientError):
            await _post(url, payload("c"))
    assert _states(tmp_path) == {"pending": 2}
    log = "".join(p.read_text() for p in tmp_path.glob("bridge-*.log"))
    assert "notification accepted" in log  # the log is there to search
    # Secrets never logged: the token, and the webhook's path beyond its first segment.
    assert TOKEN not in log
    assert "webhook-secret-part" not in log


async def test_sighup_reloads_channels_and_routes(tmp_path, aiohttp_server):
    first = await _serve(aiohttp_server, Destination())
    second = await _serve(aiohttp_server, Destination())
    config = tmp_path / "bridge.yml"
    config.write_text(f'channels:\n  one: {{type: webhook, url: "{first.url}"}}\n')
    async with run_bridge(tmp_path, BRIDGE_CONFIG=str(config)) as b:
        proc, url = b.proc, b.url
        assert await _post(url, payload("g1")) == 200
        await eventually(lambda: len(first.requests) == 1)
        config.write_text(f'channels:\n  two: {{type: webhook, url: "{second.url}"}}\n')
        proc.send_signal(signal.SIGHUP)

        async def reloaded() -> bool:
            async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
                return 'alert_bridge_deliveries_total{channel="two",result="delivered"}' in await r.text()

        await eventually(reloaded)
        assert await _post(url, payload("g2")) == 200
        await eventually(lambda: len(second.requests) == 1)
        # A broken file on the next SIGHUP keeps the running configuration.
        config.write_text("channels: [")
        proc.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.3)
        assert await _post(url, payload("g3")) == 200
        await eventually(lambda: len(second.requests) == 2)
        assert proc.returncode is None
    assert len(first.requests) == 1
