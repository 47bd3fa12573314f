"""Console channel: each message as readable text on stdout, for a first run with no channel configured."""

from __future__ import annotations

import sys
from typing import TextIO

from bridge.channels.base import ChannelContext, Message, Outcome, Result
from bridge.channels.settings import ConsoleSettings, pace_from_rate
from bridge.payload import Notification
from bridge.render.context import build_view
from bridge.render.engine import Templates

__all__ = ["ConsoleChannel"]

TEMPLATE = "console.txt.j2"


class ConsoleChannel:
    type = "console"

    def __init__(self, name: str, settings: ConsoleSettings, ctx: ChannelContext, stream: TextIO | None = None) -> None:
        self.name = name
        self.lane = "console"
        self.pace = pace_from_rate(settings.rate)
        self.send_resolved = settings.send_resolved
        self._ctx = ctx
        self._stream = stream  # None: whatever sys.stdout is at send time
        self._templates = Templates("console", ctx.templates_dir)

    def describe(self) -> str:
        return "stdout"

    def render(self, notification: Notification) -> list[Message]:
        view = build_view(notification, self._ctx)
        text = self._templates.render(TEMPLATE, group=view, alerts=view.alerts, part=1, parts=1, more=0)
        return [Message(body=text.rstrip("\n") + "\n")]

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
