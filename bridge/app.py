"""The aiohttp app: intake (auth, size cap, validation, commit to the outbox), dead letters, health, metrics.

Each resource (HTTP session, outbox, dispatcher, the SIGHUP handler) is one cleanup context, started in
order and stopped in reverse, as in aiohttp's own examples; configuration reloads happen in `reload` only.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from bridge import runbooks
from bridge.channels import CHANNEL_TYPES, create_channel
from bridge.config import BridgeConfig, ConfigError, load_config
from bridge.dispatch import Dispatcher
from bridge.insight.service import Insight
from bridge.keys import DISPATCHER, INSIGHT, OUTBOX, RELOADS, SESSION, STATE, BridgeState, ChannelFactory
from bridge.metrics import BridgeMetrics
from bridge.model import Channel, ChannelContext
from bridge.outbox import Outbox, OutboxError, QueueFull, dedupe_key
from bridge.payload import BodyError, PayloadError, decode_payload, to_notification
from bridge.routing import route_label, select_channels
from common.auth import check_authorization
from common.logs import add_secrets

__all__ = ["OPEN_PATHS", "build_channels", "channel_context", "create_app", "is_open", "reload"]

log = logging.getLogger("bridge.app")

# The runbooks hold no secret: chat links to them must open without the token.
OPEN_PATHS = frozenset({"/metrics", "/healthz", "/readyz", runbooks.PATH, f"{runbooks.PATH}/"})
# Charts are fetched by Slack and Teams, which send no token: their unguessable id guards them.
OPEN_PREFIXES = ("/charts/",)


def is_open(path: str) -> bool:
    """Whether `path` answers without the token."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


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
        timezone=config.timezone,
    )


def build_channels(
    config: BridgeConfig, ctx: ChannelContext, factory: ChannelFactory = create_channel
) -> dict[str, Channel]:
    """One Channel object per configured channel."""
    out: dict[str, Channel] = {}
    for name, settings in config.channels.items():
        try:
            out[name] = factory(name, settings, ctx)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"channel {name}: {exc}") from None
    return out


async def reload(app: web.Application) -> bool:
    """Re-read configuration and templates; on any error keep running with the old ones."""
    state = app[STATE]
    try:
        config = load_config(os.environ if state.env is None else state.env, CHANNEL_TYPES)
        add_secrets(None, config.secrets())  # a reload can bring new webhook URLs
        channels = build_channels(config, channel_context(config, app[SESSION]), state.create_channel)
    except ConfigError as exc:
        log.error("reload failed, keeping the previous configuration", extra={"error": str(exc)})
        return False
    # Charts keep the Prometheus and public URL they started with (PROMETHEUS_URL links do follow a reload).
    for key in ("host", "port", "data_dir", "prometheus_query_url", "public_url", "chart_timeout"):
        if getattr(config, key) != getattr(state.config, key):
            log.warning("setting needs a restart to change", extra={"setting": key})
    state.config = config
    state.channels = channels
    state.metrics.init_routes(config.routing.route_names)
    await app[DISPATCHER].set_channels(channels)
    log.info("configuration reloaded", extra={"channels": sorted(channels)})
    return True


def _json(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # orjson, not aiohttp's default json.dumps: one answer per notification, a few microseconds each
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json", charset="utf-8"
    )


def _error(status: int, message: str, **headers: str) -> web.Response:
    return _json({"error": message}, status=status, headers=headers or None)


@web.middleware
async def _auth(request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
    state = request.app[STATE]
    token = state.config.token
    if token is None or is_open(request.path):
        return await handler(request)
    if not check_authorization(request.headers.get("Authorization"), token):
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
    repeat = state.recent.key(label, body)
    now = time.time()
    group_key = state.recent.group_of(repeat, now, config.dedupe_window)
    if group_key is not None:  # Alertmanager's retry or an HA peer, byte for byte: stored already
        log.info("duplicate notification ignored", extra={"route": label, "group_key": group_key})
        return _json({"status": "duplicate"})
    try:
        # On the loop even when large: msgspec holds the interpreter lock throughout, so a thread would not let
        # the loop run meanwhile (measured: the loop's stall equals the decode either way).
        notification = to_notification(decode_payload(body), body)
    except BodyError as exc:
        return reject(400, "bad_json", str(exc))
    except PayloadError as exc:
        return reject(400, "bad_payload", str(exc))
    channels = select_channels(config.routing, config.channels, route, notification)
    try:
        stored = await request.app[OUTBOX].enqueue(
            route=label,
            status=notification.status,
            group_key=notification.group_key,
            dedupe_key=dedupe_key(label, notification),
            body=body,
            channels=channels,
            dedupe_window=config.dedupe_window,
            max_queue=config.max_queue,
            now=now,
        )
    except QueueFull as exc:
        return reject(503, "queue_full", f"outbox full, retry later: {exc}")
    except OutboxError:
        log.exception("could not store notification")
        return reject(503, "store_failed", "could not store the notification, retry later")
    if stored.duplicate:
        log.info("duplicate notification ignored", extra={"route": label, "group_key": notification.group_key})
        return _json({"status": "duplicate"})
    state.recent.stored(repeat, now, notification.group_key)
    metrics.received.labels(label, notification.status).inc()
    for channel in stored.superseded:
        metrics.superseded.labels(channel).inc()
    request.app[DISPATCHER].remember(stored.id, notification, channels)
    request.app[DISPATCHER].wake(channels)
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
    return _json({"status": "accepted", "id": stored.id, "channels": channels})


async def _dead_letters(request: web.Request) -> web.Response:
    try:
        limit = min(1000, max(1, int(request.query.get("limit", "100"))))
        offset = max(0, int(request.query.get("offset", "0")))
    except ValueError:
        return _error(400, "limit and offset must be integers")
    rows = await request.app[OUTBOX].dead_letters(limit, offset)
    return _json({"dead_letters": rows})


async def _retry_dead_letter(request: web.Request) -> web.Response:
    channels = request.app[STATE].channels
    raw = request.match_info["id"]
    if not raw.isdigit():
        return _error(400, f"dead letter id must be an integer, not {raw[:20]!r}")
    channel = await request.app[OUTBOX].retry_dead(int(raw), channels=channels)
    if channel is None:
        return _error(404, f"no dead letter {raw}")
    if channel not in channels:
        return _error(409, f"channel {channel!r} of dead letter {raw} is not configured")
    request.app[DISPATCHER].wake([channel])
    log.info("dead letter queued again", extra={"delivery": int(raw), "channel": channel})
    return _json({"status": "queued", "id": int(raw), "channel": channel})


async def _metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    try:
        stats = await request.app[OUTBOX].pending_stats()
        state.metrics.set_queue(stats, state.channels)
    except OutboxError:
        log.exception("queue stats unavailable")
    resp = web.Response(body=state.metrics.exposition())
    resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    resp.charset = "utf-8"
    return resp


async def _chart(request: web.Request) -> web.StreamResponse:
    path = request.app[INSIGHT].store.path(request.match_info["id"])
    if path is None:
        return _error(404, "no such chart")
    return web.FileResponse(path, headers={"Content-Type": "image/png", "Cache-Control": "public, max-age=604800"})


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def _readyz(request: web.Request) -> web.Response:
    if await request.app[OUTBOX].writable():
        return web.Response(text="ready\n")
    return web.Response(status=503, text="outbox not writable\n")


# ---------------------------------------------------------------- resources, one cleanup context each


async def _session(app: web.Application) -> AsyncIterator[None]:
    """One HTTP session for every channel (aiohttp: one ClientSession per app)."""
    app[SESSION] = aiohttp.ClientSession()
    yield
    await app[SESSION].close()


async def _outbox(app: web.Application) -> AsyncIterator[None]:
    app[OUTBOX] = await Outbox.open(app[STATE].config.data_dir)
    yield
    await app[OUTBOX].close()


async def _insight(app: web.Application) -> AsyncIterator[None]:
    """Charts and firing history from Prometheus (PROMETHEUS_QUERY_URL, else PROMETHEUS_URL); inert without."""
    config = app[STATE].config
    insight = Insight(
        app[SESSION],
        app[STATE].metrics,
        query_url=config.prometheus_query_url or config.prometheus_url,
        public_url=config.public_url,
        data_dir=config.data_dir,
        timeout=config.chart_timeout,
        zone=config.timezone,
    )
    app[INSIGHT] = insight
    insight.start()
    yield
    await insight.close()


async def _dispatcher(app: web.Application) -> AsyncIterator[None]:
    """The channels and the delivery lanes; stopping lets deliveries in flight finish within the grace."""
    state = app[STATE]
    config = state.config
    if config.token is None:
        log.warning("BRIDGE_TOKEN is not set: intake and dead letters are open to anyone who can connect")
    state.channels = build_channels(config, channel_context(config, app[SESSION]), state.create_channel)
    dispatcher = Dispatcher(
        app[OUTBOX],
        state.metrics,
        max_delivery_age=config.max_delivery_age,
        retry_initial=config.retry_initial,
        retry_max=config.retry_max,
        prune_after=max(3600.0, config.dedupe_window),
        enrich=app[INSIGHT].enrich,
    )
    app[DISPATCHER] = dispatcher
    await dispatcher.start(state.channels)
    if not state.channels:
        log.warning("no channel configured (BRIDGE_CONSOLE=false): notifications are accepted but go nowhere")
    log.info(
        "alert-bridge started",
        extra={"channels": {n: c.describe() for n, c in state.channels.items()}, "data_dir": str(config.data_dir)},
    )
    yield
    await dispatcher.stop(app[STATE].config.shutdown_grace)


async def _sighup(app: web.Application) -> AsyncIterator[None]:
    """SIGHUP reloads configuration and templates."""
    loop = asyncio.get_running_loop()
    tasks = app[RELOADS]  # strong references: a reload task must not be collected mid-flight

    def on_sighup() -> None:
        task = loop.create_task(reload(app))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    loop.add_signal_handler(signal.SIGHUP, on_sighup)
    yield
    loop.remove_signal_handler(signal.SIGHUP)


def create_app(
    config: BridgeConfig,
    *,
    channel_factory: ChannelFactory = create_channel,
    env: Mapping[str, str] | None = None,
    metrics: BridgeMetrics | None = None,
    handle_sighup: bool = False,
) -> web.Application:
    """The bridge as an aiohttp app; `channel_factory` defaults to the channel registry."""
    app = web.Application(client_max_size=config.max_body, middlewares=[_auth])
    app[STATE] = BridgeState(config=config, metrics=metrics or BridgeMetrics(), create_channel=channel_factory, env=env)
    app[STATE].metrics.init_routes(config.routing.route_names)
    app[RELOADS] = set()
    app.router.add_post("/alerts", _receive)
    app.router.add_post("/alerts/{route}", _receive)
    app.router.add_get("/dead-letters", _dead_letters)
    app.router.add_post("/dead-letters/{id}/retry", _retry_dead_letter)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    runbooks.add_routes(app)
    app.router.add_get("/charts/{id}.png", _chart)
    # The outbox first: a corrupt one stops the start before anything else is opened.
    app.cleanup_ctx.extend([_outbox, _session, _insight, _dispatcher])
    if handle_sighup:
        app.cleanup_ctx.append(_sighup)
    return app
