"""Console: each message as readable text on stdout, for a first run with no channel configured."""

from __future__ import annotations

from bridge.channels.console.channel import ConsoleChannel
from bridge.channels.console.settings import ConsoleSettings
from bridge.model import ChannelType

__all__ = ["CONSOLE", "ConsoleChannel", "ConsoleSettings"]

# BRIDGE_CONSOLE decides when the environment gets a console channel (config), not a variable of its own.
CONSOLE = ChannelType(name="console", settings=ConsoleSettings, create=ConsoleChannel)
