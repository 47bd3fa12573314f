"""Console channel settings: nothing beyond what every channel accepts."""

from __future__ import annotations

from typing import Literal

from bridge.model import ChannelSettings

__all__ = ["ConsoleSettings"]


class ConsoleSettings(ChannelSettings):
    type: Literal["console"] = "console"
