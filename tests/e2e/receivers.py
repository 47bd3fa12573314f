"""The end-to-end test's destinations: Slack-like and Discord-like HTTP fakes and a real SMTP server, each
run in a background thread (the stack runner and the test itself are synchronous), and what they received
reduced to (status, alert name, text) per message."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from dataclasses import dataclass

from tests.fakes.discord import FakeDiscord
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import Mailbox, smtp_server

__all__ = ["Received", "Receivers", "classify"]


@dataclass(frozen=True)
class Received:
    """One delivered message: FIRING or RESOLVED, and its whole text (for names, severity, model, value)."""

    status: str
    text: str


def classify(text: str) -> str:
    """FIRING or RESOLVED, as the bridge's templates print it in capitals."""
    if re.search(r"\bRESOLVED\b", text):
        return "RESOLVED"
    if re.search(r"\bFIRING\b", text):
        return "FIRING"
    return "?"


def _readable(body: bytes) -> str:
    """A JSON body with its escapes undone, so that text can be searched as a reader would see it."""
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        return body.decode(errors="replace")


class Receivers:
    """The project's Slack-like and Discord-like fakes (on a private loop thread) and SMTP server (aiosmtpd)."""

    def __init__(self) -> None:
        self.slack = FakeSlack()
        self.discord = FakeDiscord()
        self._exit = contextlib.ExitStack()
        self.mailbox: Mailbox | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-receivers", daemon=True)

    def __enter__(self) -> Receivers:
        self._thread.start()
        for fake in (self.slack, self.discord):
            asyncio.run_coroutine_threadsafe(fake.start(), self._loop).result(10)
        self.mailbox = self._exit.enter_context(smtp_server("none"))
        return self

    def __exit__(self, *exc: object) -> None:
        self._exit.close()
        for fake in (self.slack, self.discord):
            asyncio.run_coroutine_threadsafe(fake.stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def bridge_env(self) -> dict[str, str]:
        return {
            "SLACK_WEBHOOK_URL": f"{self.slack.url}/services/T000/B000/secret",
            "DISCORD_WEBHOOK_URL": f"{self.discord.url}/api/webhooks/1/secret",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(self.mailbox.port),
            "SMTP_TLS": "none",
            "EMAIL_FROM": "alerts@example.com",
            "EMAIL_TO": "oncall@example.com",
        }

    def received(self) -> dict[str, list[Received]]:
        """Delivered messages per bridge channel name, in arrival order."""
        out: dict[str, list[Received]] = {"slack": [], "discord": [], "email": []}
        for name, fake in (("slack", self.slack), ("discord", self.discord)):
            for rec in list(fake.delivered):
                text = _readable(rec.body)
                out[name].append(Received(classify(text), text))
        for msg in list(self.mailbox.messages):
            body = msg.get_body(preferencelist=("plain",))
            text = f"Subject: {msg['Subject']}\n{body.get_content() if body else ''}"
            out["email"].append(Received(classify(text), text))
        return out
