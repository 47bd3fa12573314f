"""The aiohttp app: intake (auth, size cap, validation, commit to the outbox), dead letters, health, metrics."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bridge import runbooks
from bridge.channels.base import Channel, ChannelContext, ChannelSettings
from bridge.config import BridgeConfig, ConfigError, build_channels, load_config, route_label, select_channels
from bridge.dispatch import Dispatcher
from bridge.keys import STATE
from bridge.metrics import BridgeMetrics
from bridge.outbox import Outbox, OutboxError, QueueFull, dedupe_key
from bridge.payload import PayloadError, parse_notification

__all__ = ["BridgeState", "channel_context", "create_app"]

log = logging.getLogger("bridge.app")

# The runbooks hold no secret: chat links to them must open without the token.
OPEN_PATHS = frozenset({"/metrics", "/healthz", "/readyz", runbooks.PATH, f"{runbooks.PATH}/"})
_BIG_BODY = 256 * 1024  # decode larger bodies in a thread so the loop keeps serving

ChannelFactory = Callable[[str, ChannelSettings, ChannelContext], Channel]


def channel_context(config: BridgeConfig, session: aiohttp.ClientSession | None) -> ChannelContext:
    """What channels share, from the configuration."""
    return ChannelContext(
        session=session,
        alertmanager_url=config.alertmanager_url,
        grafana_url=config.grafana_url,
        prometheus_url=config.prometheus_url,
        runbook_base_url=config.runbook_base_url,
        templates_dir=config.templates_dir,
        max_parts=config.max_parts,
    )


@dataclass
class BridgeState:
    """The running bridge: its configuration (replaced whole on reload) and the resources it owns."""

    config: BridgeConfig
    metrics: BridgeMetrics
    env: Mapping[str, str] | None = None  # where reload() reads from; None: os.environ
    channel_factory: ChannelFactory | None = None
    outbox: Outbox | None = None
    dispatcher: Dispatcher | None = None
    session: aiohttp.ClientSession | None = None
    channels: dict[str, Channel] = field(default_factory=dict)

    async def reload(self) -> bool:
        """Re-read configuration and templates; on any error keep running with the old ones."""
        try:
            config = load_config(os.environ if self.env is None else self.env)
            channels = build_channels(config, channel_context(config, self.session), self.channel_factory)
        except ConfigError as exc:
            log.error("reload failed, keeping the previous configuration", extra={"error": str(exc)})
            return False
        for key in ("host", "port", "data_dir"):
            if getattr(config, key) != getattr(self.config, key):
                log.warning("setting needs a restart to change", extra={"setting": key})
        self.config = config
        self.channels = channels
        self.metrics.init_routes(config.route_names)
        assert self.dispatcher is not None
        await self.dispatcher.set_channels(channels)
        log.info("configuration reloaded", extra={"channels": sorted(channels)})
        return True


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def _authorized(header: str, token: str) -> bool:
    """Bearer <token>, or Basic with the token as password; compared in constant time."""
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        given = value.strip()
    elif scheme == "basic":
        try:
            given = base64.b64decode(value.strip(), validate=True).decode("utf-8").partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            return False
    else:
        return False
    return hmac.compare_digest(given.encode(), token.encode())


@web.middleware
async def _auth(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    state = request.app[STATE]
    token = state.config.token
    if token is None or request.path in OPEN_PATHS:
        return await handler(request)
    if not _authorized(request.headers.get("Authorization", ""), token):
        state.metrics.rejected.labels("unauthorized").inc()
        return _error(
            401,
            "missing or wrong credentials (Bearer token, or Basic with the token as password)",
            **{"WWW-Authenticate": 'Bearer realm="alert-bridge"'},
        )
    return await handler(request)


async def _receive(request: web.Request) -> web.Response:
    state = request.app[STATE]
    config, metrics = state.config, state.metrics
    route = request.match_info.get("route", "")
    label = route_label(route)

    def reject(status: int, reason: str, message: str) -> web.Response:
        metrics.rejected.labels(reason).inc()
        log.warning("notification rejected", extra={"route": label, "reason": reason, "error": message[:300]})
        return _error(status, message)

    too_large = f"body larger than BRIDGE_MAX_BODY ({config.max_body} bytes)"
    if request.content_length is not None and request.content_length > config.max_body:
        return reject(413, "too_large", too_large)
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return reject(413, "too_large", too_large)
    try:
        obj = await asyncio.to_thread(json.loads, body) if len(body) > _BIG_BODY else json.loads(body)
    except json.JSONDecodeError as exc:
        return reject(400, "bad_json", f"body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")
    except (UnicodeDecodeError, ValueError):
        return reject(400, "bad_json", "body is not valid JSON: not UTF-8 text")
    try:
        notification = parse_notification(obj)
    except PayloadError as exc:
        return reject(400, "bad_payload", f"not an Alertmanager v4 webhook payload: {exc}")

    channels = select_channels(config, route, notification)
    try:
        stored = await state.outbox.enqueue(  # type: ignore[union-attr]
            route=label,
            status=notification.status,
            group_key=notification.group_key,
            dedupe_key=dedupe_key(label, notification),
            body=body,
            channels=channels,
            dedupe_window=config.dedupe_window,
            max_queue=config.max_queue,
        )
    except QueueFull as exc:
        return reject(503, "queue_full", f"outbox full, retry later: {exc}")
    except OutboxError:
        log.exception("could not store notification")
        return reject(503, "store_failed", "could not store the notification, retry later")
    if stored.duplicate:
        log.info("duplicate notification ignored", extra={"route": label, "group_key": notification.group_key})
        return web.json_response({"status": "duplicate"})
    metrics.received.labels(label, notification.status).inc()
    state.dispatcher.wake(channels)  # type: ignore[union-attr]
    log.info(
        "notification accepted",
        extra={
            "route": label,
            "id": stored.id,
            "status": notification.status,
            "alerts": len(notification.alerts),
            "channels": channels,
        },
    )
    return web.json_response({"status": "accepted", "id": stored.id, "channels": channels})


async def _dead_letters(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        limit = min(1000, max(1, int(request.query.get("limit", "100"))))
        offset = max(0, int(request.query.get("offset", "0")))
    except ValueError:
        return _error(400, "limit and offset must be integers")
    rows = await state.outbox.dead_letters(limit, offset)  # type: ignore[union-attr]
    return web.json_response({"dead_letters": rows})


async def _retry_dead_letter(request: web.Request) -> web.Response:
    state = request.app[STATE]
    raw = request.match_info["id"]
    if not raw.isdigit():
        return _error(400, f"dead letter id must be an integer, not {raw[:20]!r}")
    channel = await state.outbox.retry_dead(int(raw), channels=state.channels)  # type: ignore[union-attr]
    if channel is None:
        return _error(404, f"no dead letter {raw}")
    if channel not in state.channels:
        return _error(409, f"channel {channel!r} of dead letter {raw} is not configured")
    state.dispatcher.wake([channel])  # type: ignore[union-attr]
    log.info("dead letter queued again", extra={"delivery": int(raw), "channel": channel})
    return web.json_response({"status": "queued", "id": int(raw), "channel": channel})


async def _metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        stats = await state.outbox.pending_stats()  # type: ignore[union-attr]
        state.metrics.set_queue(stats, state.channels)
    except OutboxError:
        log.exception("queue stats unavailable")
    resp = web.Response(body=state.metrics.exposition())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    resp.charset = "utf-8"
    return resp


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    outbox = request.app[STATE].outbox
    if outbox is not None and await outbox.writable():
        return web.Response(text="ready\n")
    return web.Response(status=503, text="outbox not writable\n")


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Session, outbox, channels and dispatcher: started in order, stopped in reverse."""
    state = app[STATE]
    config = state.config
    if config.token is None:
        log.warning("BRIDGE_TOKEN is not set: intake and dead letters are open to anyone who can connect")
    state.session = aiohttp.ClientSession()
    try:
        state.outbox = await Outbox.open(config.data_dir)
        try:
            state.channels = build_channels(config, channel_context(config, state.session), state.channel_factory)
            state.dispatcher = Dispatcher(
                state.outbox,
                state.metrics,
                max_delivery_age=config.max_delivery_age,
                retry_initial=config.retry_initial,
                retry_max=config.retry_max,
                prune_after=max(3600.0, config.dedupe_window),
            )
            await state.dispatcher.start(state.channels)
            if not state.channels:
                log.warning("no channel configured (BRIDGE_CONSOLE=false): notifications are accepted but go nowhere")
            log.info(
                "alert-bridge started",
                extra={
                    "channels": {n: c.describe() for n, c in state.channels.items()},
                    "data_dir": str(config.data_dir),
                },
            )
            try:
                yield
            finally:
                await state.dispatcher.stop(config.shutdown_grace)
        finally:
            await state.outbox.close()
    finally:
        await state.session.close()


def create_app(
    config: BridgeConfig,
    *,
    channel_factory: ChannelFactory | None = None,
    env: Mapping[str, str] | None = None,
    metrics: BridgeMetrics | None = None,
) -> web.Application:
    """The bridge as an aiohttp app; `channel_factory` defaults to the channel registry."""
    app = web.Application(client_max_size=config.max_body, middlewares=[_auth])
    state = BridgeState(config=config, metrics=metrics or BridgeMetrics(), env=env, channel_factory=channel_factory)
    state.metrics.init_routes(config.route_names)
    app[STATE] = state
    app.router.add_post("/alerts", _receive)
    app.router.add_post("/alerts/{route}", _receive)
    app.router.add_get("/dead-letters", _dead_letters)
    app.router.add_post("/dead-letters/{id}/retry", _retry_dead_letter)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    runbooks.add_routes(app)
    app.cleanup_ctx.append(_resources)
    return app
