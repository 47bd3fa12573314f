"""The simulator's aiohttp app: /metrics behind Bearer auth, /healthz, GET and POST /scenario."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from aiohttp import web

from common.auth import check_authorization
from exporter.simulator.config import Settings
from exporter.simulator.scenarios import INCIDENT_MODEL, MODELS, SCENARIOS
from exporter.simulator.traffic import CONTENT_TYPE, Exposition, Simulation

__all__ = ["EXPOSITION_KEY", "SETTINGS_KEY", "SIMULATION_KEY", "create_app"]

SETTINGS_KEY = web.AppKey("settings", Settings)
SIMULATION_KEY = web.AppKey("simulation", Simulation)
EXPOSITION_KEY = web.AppKey("exposition", Exposition)

log = logging.getLogger("llm_proxy_sim")


def _authorized(request: web.Request) -> bool:
    token = request.app[SETTINGS_KEY].token
    return token is None or check_authorization(request.headers.get("Authorization"), token, allow_basic=False)


def _unauthorized() -> web.Response:
    return web.Response(
        status=401,
        text="401 Unauthorized: send Authorization: Bearer <SIM_TOKEN>\n",
        headers={"WWW-Authenticate": 'Bearer realm="llm-proxy-sim"'},
    )


def _wants_gzip(accept_encoding: str) -> bool:
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() == "gzip":
            q = params.strip()
            return not (q.startswith("q=") and q[2:].strip() in {"0", "0.0", "0.00", "0.000"})
    return False


async def _metrics(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _unauthorized()
    gzip = _wants_gzip(request.headers.get("Accept-Encoding", ""))
    body = request.app[EXPOSITION_KEY].render(request.app[SIMULATION_KEY], gzip=gzip)
    headers = {"Content-Type": CONTENT_TYPE, "Vary": "Accept-Encoding"}
    if gzip:
        headers["Content-Encoding"] = "gzip"
    return web.Response(body=body, headers=headers)


async def _healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def _state(sim: Simulation) -> dict:
    seconds = sim.scenario_seconds()
    return {
        "scenario": sim.scenario,
        "phase": sim.phase(),
        "scenario_seconds": round(seconds, 3),
        "scenario_minutes": round(seconds / 60.0, 4),
        "speed": sim.speed,
        "incident_model": INCIDENT_MODEL,
        "models": list(MODELS),
    }


async def _get_scenario(request: web.Request) -> web.Response:
    return web.json_response(_state(request.app[SIMULATION_KEY]))


async def _post_scenario(request: web.Request) -> web.Response:
    if not _authorized(request):
        return _unauthorized()
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise web.HTTPBadRequest(text='body must be JSON like {"scenario": "steady"}\n') from None
    name = body.get("scenario") if isinstance(body, dict) else None
    if not isinstance(name, str):
        raise web.HTTPBadRequest(text='body must be JSON like {"scenario": "steady"}\n')
    if name not in SCENARIOS:
        raise web.HTTPBadRequest(text=f"unknown scenario {name[:64]!r}; known: {', '.join(SCENARIOS)}\n")
    sim = request.app[SIMULATION_KEY]
    previous = sim.scenario
    sim.switch(name)
    log.info("scenario switched", extra={"from": previous, "to": name})
    return web.json_response(_state(sim))


def create_app(settings: Settings, clock: Callable[[], float] = time.monotonic) -> web.Application:
    """The simulator app; `clock` (seconds, monotonic) drives scenario time and may be replaced in tests."""
    app = web.Application()
    app[SETTINGS_KEY] = settings
    app[SIMULATION_KEY] = Simulation(settings.scenario, settings.speed, clock)
    # Built once: a 100k-series padding is rendered and gzipped here, not on every scrape.
    app[EXPOSITION_KEY] = Exposition(settings.series, settings.format)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/scenario", _get_scenario)
    app.router.add_post("/scenario", _post_scenario)
    if settings.token is None:
        log.warning("no SIM_TOKEN or SIM_TOKEN_FILE set: /metrics and POST /scenario are open to anyone")
    return app
