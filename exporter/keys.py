"""Typed application keys: the state every handler and cleanup context shares."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from exporter.config import Config
from exporter.pipeline import Pipeline
from exporter.poller import Poller

__all__ = ["AppKeys"]


class AppKeys:
    """The app's keys, in one place."""

    CONFIG = web.AppKey("config", Config)
    PIPELINE = web.AppKey("pipeline", Pipeline)
    SESSION = web.AppKey("session", aiohttp.ClientSession)
    POLLER = web.AppKey("poller", Poller)
