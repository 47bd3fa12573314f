"""Typed application keys: every piece of state the bridge app holds, declared in one place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from bridge.app import BridgeState

__all__ = ["STATE"]

STATE: web.AppKey[BridgeState] = web.AppKey("bridge_state")
