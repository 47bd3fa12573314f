"""The end-to-end test's destinations: Slack-like and Discord-like HTTP fakes and a real SMTP server, each
run in a background thread (the stack runner and the test itself are synchronous), and what they received
reduced to (status, alert name, text) per message."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import re
import threading
from dataclasses import dataclass

from aiosmtpd.controller import Controller

from tests.fakes.recorder import Answer, Recorded, Recorder
from tests.realbin import free_port

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


class _Discord(Recorder):
    """Discord's webhook: with ?wait=true, 200 and the saved message (with its id); else 204."""

    _next = 1000

    def respond(self, rec: Recorded) -> Answer:
        if rec.query.get("wait") in ("true", "1", "True"):
            _Discord._next += 1
            return Answer(200, f'{{"id": "{_Discord._next}", "channel_id": "1"}}', {"Content-Type": "application/json"})
        return Answer(204, b"")


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # aiosmtpd calls the hook by this name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


def _readable(body: bytes) -> str:
    """A JSON body with its escapes undone, so that text can be searched as a reader would see it."""
    try:
        return json.dumps(json.loads(body), ensure_ascii=False)
    except ValueError:
        return body.decode(errors="replace")


class Receivers:
    """Slack-like, Discord-like (aiohttp on a private loop thread) and SMTP (aiosmtpd) on loopback."""

    def __init__(self) -> None:
        self.slack = Recorder()  # Slack's incoming webhook answers 200 "ok"
        self.discord = _Discord()
        self.mailbox = _Mailbox()
        self.smtp_port = free_port()
        self._smtp = Controller(self.mailbox, hostname="127.0.0.1", port=self.smtp_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-receivers", daemon=True)

    def __enter__(self) -> Receivers:
        self._thread.start()
        for fake in (self.slack, self.discord):
            asyncio.run_coroutine_threadsafe(fake.start(), self._loop).result(10)
        self._smtp.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._smtp.stop()
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
            "SMTP_PORT": str(self.smtp_port),
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
