"""aiohttp app factory: /metrics behind a Bearer token, /healthz, /readyz, /, the poller as a cleanup context."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from aiohttp import web

from common.auth import check_authorization
from exporter.config import Config
from exporter.expose import CONTENT_TYPE, accepts_gzip
from exporter.keys import AppKeys
from exporter.pipeline import Pipeline
from exporter.poller import Poller
from exporter.upstream import make_session

__all__ = ["create_app"]

_DEFAULT_SCRAPE_TIMEOUT = 10.0
_TIMEOUT_MARGIN = 0.5  # seconds kept for writing the answer before Prometheus gives up
_INDEX = """<!doctype html>
<html><head><meta charset="utf-8"><title>llm-exporter</title></head>
<body><h1>llm-exporter</h1><p>Metrics sidecar for an LLM auth proxy.</p>
<ul><li><a href="metrics">/metrics</a> (Bearer token if configured)</li>
<li><a href="healthz">/healthz</a></li><li><a href="readyz">/readyz</a></li></ul></body></html>
"""


def _authorized(request: web.Request, token: str | None) -> bool:
    # Bearer only: the README promises Prometheus' bearer-token scrape, nothing else.
    return token is None or check_authorization(request.headers.get("Authorization"), token, allow_basic=False)


def _scrape_budget(request: web.Request) -> float:
    raw = request.headers.get("X-Prometheus-Scrape-Timeout-Seconds")
    try:
        timeout = float(raw) if raw else _DEFAULT_SCRAPE_TIMEOUT
    except ValueError:
        timeout = _DEFAULT_SCRAPE_TIMEOUT
    if not timeout > 0:
        timeout = _DEFAULT_SCRAPE_TIMEOUT
    return max(0.05, min(timeout - _TIMEOUT_MARGIN, timeout * 0.8))


async def metrics(request: web.Request) -> web.Response:
    app = request.app
    if not _authorized(request, app[AppKeys.CONFIG].token):
        return web.Response(
            status=401,
            text="missing or wrong Bearer token\n",
            headers={"WWW-Authenticate": 'Bearer realm="llm-exporter"'},
        )
    poller = app[AppKeys.POLLER]
    exposition = poller.exposition
    if exposition is None:  # just started: wait for the first poll, within the scraper's timeout
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(poller.first_poll.wait(), _scrape_budget(request))
        exposition = poller.exposition or app[AppKeys.PIPELINE].pending()
    headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
    if accepts_gzip(request.headers.get("Accept-Encoding")):
        headers["Content-Encoding"] = "gzip"
        return web.Response(body=await exposition.gzipped(), headers=headers)
    return web.Response(body=exposition.body, headers=headers)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    poller, pipeline = request.app[AppKeys.POLLER], request.app[AppKeys.PIPELINE]
    ready = poller.ready() and pipeline.mapping_ok()  # a mapping that matches nothing is not ready
    upstreams = {
        name: {"up": h.up} if h.mapped is None else {"up": h.up, "mapping_matched": h.mapped}
        for name, h in pipeline.health.items()
    }
    body = json.dumps({"ready": ready, "upstreams": upstreams})
    return web.Response(status=200 if ready else 503, text=body + "\n", content_type="application/json")


async def index(request: web.Request) -> web.Response:
    return web.Response(text=_INDEX, content_type="text/html")


async def _session_ctx(app: web.Application) -> AsyncIterator[None]:
    app[AppKeys.SESSION] = make_session(app[AppKeys.CONFIG])
    yield
    await app[AppKeys.SESSION].close()


async def _poller_ctx(app: web.Application) -> AsyncIterator[None]:
    poller = Poller(app[AppKeys.CONFIG], app[AppKeys.SESSION], app[AppKeys.PIPELINE])
    app[AppKeys.POLLER] = poller
    async with poller.running():
        yield


def create_app(config: Config) -> web.Application:
    """The sidecar as an aiohttp Application; polling starts with the app and stops with it."""
    app = web.Application()
    app[AppKeys.CONFIG] = config
    app[AppKeys.PIPELINE] = Pipeline(config)
    app.cleanup_ctx.append(_session_ctx)
    app.cleanup_ctx.append(_poller_ctx)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/", index)
    return app
