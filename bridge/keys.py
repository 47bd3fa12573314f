"""Typed application keys: every piece of state the bridge app holds, declared in one place."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from bridge.config import BridgeConfig
from bridge.dispatch import Dispatcher
from bridge.insight.service import Insight
from bridge.metrics import BridgeMetrics
from bridge.model import Channel, ChannelContext, ChannelSettings
from bridge.outbox import Outbox
from bridge.repeats import RecentBodies

__all__ = ["DISPATCHER", "INSIGHT", "OUTBOX", "RELOADS", "SESSION", "STATE", "BridgeState", "ChannelFactory"]

ChannelFactory = Callable[[str, ChannelSettings, ChannelContext], Channel]


@dataclass
class BridgeState:
    """What a reload replaces (configuration and channels) and the metrics that outlive it."""

    config: BridgeConfig
    metrics: BridgeMetrics
    create_channel: ChannelFactory
    env: Mapping[str, str] | None = None  # where a reload reads from; None: os.environ
    channels: dict[str, Channel] = field(default_factory=dict)
    recent: RecentBodies = field(default_factory=RecentBodies)  # repeats answered before decoding


STATE: web.AppKey[BridgeState] = web.AppKey("state", BridgeState)
SESSION: web.AppKey[aiohttp.ClientSession] = web.AppKey("session", aiohttp.ClientSession)
OUTBOX: web.AppKey[Outbox] = web.AppKey("outbox", Outbox)
DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher", Dispatcher)
INSIGHT: web.AppKey[Insight] = web.AppKey("insight", Insight)
RELOADS: web.AppKey[set[asyncio.Task[bool]]] = web.AppKey("reloads", set)
