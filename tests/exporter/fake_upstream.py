"""A controllable stand-in for the proxy's /metrics: fixed bodies, constant-rate traffic, scripted failures."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

__all__ = ["BUCKETS", "FakeUpstream", "Traffic", "exposition"]

BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, float("inf"))


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(bound)


def exposition(models: dict[str, dict[str, object]]) -> bytes:
    """The proxy's four families for `models`: {model: {requests, failed, prompt, completion, buckets}}.

    `buckets` is a list of cumulative counts matching BUCKETS; `failed` a number (reason="upstream_error").
    """
    lines = ["# HELP llm_requests_total Requests, failed included", "# TYPE llm_requests_total counter"]
    lines += [f'llm_requests_total{{model="{m}"}} {v["requests"]!r}' for m, v in models.items()]
    lines += ["# HELP llm_requests_failed_total Failed requests", "# TYPE llm_requests_failed_total counter"]
    lines += [
        f'llm_requests_failed_total{{model="{m}",reason="upstream_error"}} {v["failed"]!r}' for m, v in models.items()
    ]
    lines += ["# HELP llm_tokens_used_total Tokens", "# TYPE llm_tokens_used_total counter"]
    for m, v in models.items():
        lines.append(f'llm_tokens_used_total{{model="{m}",type="prompt"}} {v["prompt"]!r}')
        lines.append(f'llm_tokens_used_total{{model="{m}",type="completion"}} {v["completion"]!r}')
    lines += ["# HELP llm_response_latency_seconds Latency", "# TYPE llm_response_latency_seconds histogram"]
    for m, v in models.items():
        counts = v["buckets"]
        for bound, count in zip(BUCKETS, counts, strict=True):
            lines.append(f'llm_response_latency_seconds_bucket{{model="{m}",le="{_le(bound)}"}} {count!r}')
        lines.append(f'llm_response_latency_seconds_sum{{model="{m}"}} {v.get("sum", 0.0)!r}')
        lines.append(f'llm_response_latency_seconds_count{{model="{m}"}} {counts[-1]!r}')
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Traffic:
    """Constant-rate traffic per model: counters proportional to the time since `start`."""

    rps: dict[str, float]
    failure_ratio: float = 0.1
    tokens_per_request: tuple[float, float] = (300.0, 100.0)  # prompt, completion
    # Cumulative share of requests at or below each of BUCKETS.
    shares: tuple[float, ...] = (0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 1.0, 1.0)
    start: float = field(default_factory=time.monotonic)

    def body(self) -> bytes:
        elapsed = time.monotonic() - self.start
        models = {}
        for model, rate in self.rps.items():
            n = rate * elapsed
            models[model] = {
                "requests": n,
                "failed": n * self.failure_ratio,
                "prompt": n * self.tokens_per_request[0],
                "completion": n * self.tokens_per_request[1],
                "buckets": [n * s for s in self.shares],
                "sum": n * 0.8,
            }
        return exposition(models)


class FakeUpstream:
    """An aiohttp server on 127.0.0.1 whose /metrics answer each test sets."""

    def __init__(self, token: str | None = "upstream-secret") -> None:
        self.token = token
        self.body: bytes | Callable[[], bytes] = exposition({})
        self.status = 200
        self.delay = 0.0
        self.content_type = "text/plain; version=0.0.4; charset=utf-8"
        self.requests: list[dict[str, str]] = []
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        self._server = TestServer(app, host="127.0.0.1")
        self.port: int | None = None

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(dict(request.headers))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="unauthorized", headers={"WWW-Authenticate": "Bearer"})
        if self.status != 200:
            return web.Response(status=self.status, text="upstream error page")
        body = self.body() if callable(self.body) else self.body
        return web.Response(body=body, headers={"Content-Type": self.content_type})

    async def start(self) -> None:
        await self._server.start_server()
        self.port = self._server.port  # kept: the server forgets it once closed

    async def close(self) -> None:
        await self._server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/metrics"

    @property
    def label(self) -> str:
        return f"127.0.0.1:{self.port}"
