"""Console channel: each message as readable text on stdout, for a first run with no channel configured."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TextIO

from bridge.channels.console.settings import ConsoleSettings
from bridge.model import ChannelContext, Message, Notification, Outcome, Pace, Result
from bridge.render.context import build_view
from bridge.render.engine import Templates

__all__ = ["ConsoleChannel", "terminal"]

TEMPLATE = "console.txt.j2"
_TEMPLATES = Path(__file__).parent / "templates"
_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def terminal(text: str) -> str:
    """Text for a terminal: control characters (ANSI escapes, carriage returns) out, newlines and tabs kept."""
    return _TERMINAL_CONTROL.sub("", text)


class ConsoleChannel:
    type = "console"

    def __init__(self, name: str, settings: ConsoleSettings, ctx: ChannelContext, stream: TextIO | None = None) -> None:
        self.name = name
        self.lane = "console"
        self.pace = Pace.from_rate(settings.rate)
        self._ctx = ctx
        self._stream = stream  # None: whatever sys.stdout is at send time
        self._templates = Templates(_TEMPLATES, ctx.templates_dir, escaper=terminal)

    def describe(self) -> str:
        return "stdout"

    def render(self, notification: Notification) -> list[Message]:
        view = build_view(notification, self._ctx)
        text = self._templates.render(TEMPLATE, group=view, alerts=view.alerts, part=1, parts=1, more=0)
        return [Message(body=text.rstrip("\n") + "\n")]

    def violations(self, message: Message) -> list[str]:
        return []

    async def send(self, message: Message) -> Result:
        stream = self._stream or sys.stdout
        try:
            stream.write(message.body)
            stream.flush()
        except (OSError, ValueError):  # closed or broken stdout
            return Result(Outcome.RETRY, "write_error")
        return Result(Outcome.DELIVERED)

    async def close(self) -> None:
        return None
