"""Helpers of the reliability suite: the bridge as a real process, a scriptable sink, posting in bursts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from common.processes import free_port
from tests.bridge.test_dispatch import eventually, payload

__all__ = [
    "SECRET_PATH",
    "TOKEN",
    "BridgeProc",
    "Sink",
    "metric",
    "post",
    "post_many",
    "run_bridge",
    "unique_payload",
]

TOKEN = "reliability-token-7f3a91c2"
SECRET_PATH = "T0RELY/B0RELY/reliability-webhook-secret-4411"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def unique_payload(i: int, status: str = "firing", alerts: int = 1) -> dict[str, Any]:
    """Notification number `i`: its own alert group, so nothing is deduplicated or superseded."""
    return payload(f"n{i:05d}", status=status, alerts=alerts)


@dataclass
class Sink:
    """A local destination on a fixed port: it can refuse connections (stopped), answer slowly or with 500."""

    delay: float = 0.0
    status: int = 200
    port: int = field(default_factory=free_port)
    received: list[dict[str, Any]] = field(default_factory=list)  # bodies answered 2xx
    answered: int = 0
    _runner: web.AppRunner | None = None

    def url(self, tag: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/hook/{SECRET_PATH}" + (f"?lane={tag}" if tag else "")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.delay:
            await asyncio.sleep(self.delay)
        self.answered += 1
        if self.status < 300:
            self.received.append(json.loads(body))
        return web.Response(status=self.status, text="ok" if self.status < 300 else "unavailable")

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/hook/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def groups(self) -> Counter[str]:
        """How often each alert group arrived (the webhook channel forwards the payload as received)."""
        return Counter(b["groupKey"] for b in self.received)


@dataclass
class BridgeProc:
    proc: asyncio.subprocess.Process
    url: str
    log: Path
    port: int

    def kill(self) -> None:
        self.proc.kill()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@asynccontextmanager
async def run_bridge(
    workdir: Path, texts: list[str] | None = None, *, port: int | None = None, wait: bool = True, **env: str
) -> AsyncIterator[BridgeProc]:
    """`python -m bridge` as its own process with the token, data under `workdir`; killed at the end.

    Its log (and anything else a test adds to `texts`) is kept for the secrets check.
    """
    port = port or free_port()
    full = {
        **os.environ,
        "BRIDGE_LISTEN": f"127.0.0.1:{port}",
        "BRIDGE_DATA_DIR": str(workdir / "data"),
        "BRIDGE_TOKEN": TOKEN,
        "BRIDGE_RETRY_INITIAL": "0.1",
        "BRIDGE_RETRY_MAX": "0.5",
        "BRIDGE_SHUTDOWN_GRACE": "2s",
        "BRIDGE_LOG_LEVEL": "INFO",
        **env,
    }
    log = workdir / f"bridge-{port}.log"
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bridge", env=full, stdout=out, stderr=out, cwd=workdir
        )
    bridge = BridgeProc(proc, f"http://127.0.0.1:{port}", log, port)
    try:
        if wait:
            await eventually(lambda: _ready(bridge), timeout=20)
        yield bridge
    finally:
        if proc.returncode is None:
            if texts is not None:  # its metrics page too, for the secrets check
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with aiohttp.ClientSession() as s, s.get(f"{bridge.url}/metrics") as r:
                        texts.append(await r.text())
            proc.kill()
            await proc.wait()
        if texts is not None:
            texts.append(bridge.log_text())


async def _ready(bridge: BridgeProc) -> bool:
    if bridge.proc.returncode is not None:
        raise AssertionError(f"bridge exited with {bridge.proc.returncode}:\n{bridge.log_text()[-3000:]}")
    try:
        async with aiohttp.ClientSession() as s, s.get(f"{bridge.url}/readyz") as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def post(session: aiohttp.ClientSession, url: str, body: Any, path: str = "/alerts") -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    async with session.post(url + path, data=data, headers={**AUTH, "Content-Type": "application/json"}) as r:
        return r.status, await r.text()


async def post_many(
    url: str, bodies: Iterable[tuple[str, Any]], concurrency: int = 16, results: dict[str, int | str] | None = None
) -> dict[str, int | str]:
    """POST (path, body) pairs with `concurrency` workers; each body's group key → status (or the error name),
    filled into `results` as the answers come."""
    queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    results = {} if results is None else results

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            path, body = queue.get_nowait()
            try:
                status, _ = await post(session, url, body, path)
            except (TimeoutError, aiohttp.ClientError) as exc:
                status = type(exc).__name__
            results[body["groupKey"]] = status

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return results


async def metric(url: str, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`, from the bridge's /metrics."""
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        text = await r.text()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] != name:
            continue
        if all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total
