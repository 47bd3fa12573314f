"""A scriptable HTTP receiver: records every request with its arrival time, answers from a script."""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = ["Answer", "Recorded", "Recorder", "TokenBucket", "texts"]


def texts(obj: Any) -> list[str]:
    """Every string in a decoded JSON body, depth first."""
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in texts(v)]
    if isinstance(obj, list):
        return [t for v in obj for t in texts(v)]
    return [obj] if isinstance(obj, str) else []


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() on arrival
    status: int = 0  # what we answered

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: str | bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)


class TokenBucket:
    """Slack's documented limit (about `rate` messages/s with a burst): `take(now)` is None if a request may
    pass, else the seconds until it could."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self, now: float) -> float | None:
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= 1:
            self._tokens -= 1
            return None
        return (1 - self._tokens) / self.rate


class Recorder:
    """Base fake: `script` answers are used first, in order; then `respond(request)` decides."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.script: deque[Answer] = deque()
        self._runner: web.AppRunner | None = None
        self.url = ""

    def respond(self, rec: Recorded) -> Answer:
        return Answer()

    @property
    def delivered(self) -> list[Recorded]:
        return [r for r in self.requests if 200 <= r.status < 300]

    async def _handle(self, request: web.Request) -> web.Response:
        rec = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=await request.read(),
            at=time.monotonic(),
        )
        self.requests.append(rec)
        answer = self.script.popleft() if self.script else self.respond(rec)
        rec.status = answer.status
        body = answer.body.encode() if isinstance(answer.body, str) else answer.body
        return web.Response(status=answer.status, body=body, headers=answer.headers)

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Recorder:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()
