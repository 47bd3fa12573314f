"""The one interface every channel implements, and the values that cross it.

A channel knows its platform: how to render a notification into messages that fit the platform's limits,
and how to send one message and classify the answer. It never retries, sleeps or counts: the dispatcher
does that, in one place, for every channel (as Alertmanager's notify package does).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from pydantic import BaseModel, ConfigDict

from bridge.payload import Notification

__all__ = [
    "Channel",
    "ChannelContext",
    "ChannelSettings",
    "Message",
    "Outcome",
    "Pace",
    "Result",
]


class Outcome(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"  # 5xx, 429, timeout, connection error: try again later
    PERMANENT = "permanent"  # any other 4xx, or a message the platform rejects as such: dead-letter


@dataclass(frozen=True)
class Result:
    """What one send attempt came to. `reason` is short and never holds a secret (e.g. "http_429", "timeout")."""

    outcome: Outcome
    reason: str = ""
    retry_after: float | None = None  # seconds the platform asked to wait (Retry-After, retry_after)
    remaining: int | None = None  # requests left in the current rate-limit window (X-RateLimit-Remaining)
    reset_after: float | None = None  # seconds until that window resets (X-RateLimit-Reset-After)


@dataclass(frozen=True)
class Pace:
    """Proactive pacing of one lane: at most `messages` per `per_seconds`."""

    messages: int
    per_seconds: float


@dataclass
class Message:
    """One request to a platform: a JSON body, an email, or text; `part`/`parts` number continuations."""

    body: Any
    part: int = 1
    parts: int = 1
    truncated: bool = False  # something was cut or collapsed to fit: counted in alert_bridge_truncations_total
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChannelContext:
    """What channels share: the app's HTTP session, external URLs for links, template overrides."""

    session: aiohttp.ClientSession | None
    alertmanager_url: str | None = None
    grafana_url: str | None = None
    prometheus_url: str | None = None
    runbook_base_url: str | None = None
    templates_dir: Path | None = None
    max_parts: int = 3  # continuation messages before "+N more alerts"


class ChannelSettings(BaseModel):
    """Options every channel type accepts; each type's settings model extends this one."""

    model_config = ConfigDict(extra="forbid")

    type: str
    send_resolved: bool = True
    # Proactive pacing for types that have none by default (webhook, email): messages per second.
    rate: float | None = None


class Channel(Protocol):
    type: str  # "slack" | "discord" | "email" | "webhook" | "console"
    name: str  # the configured name: the `channel` label in metrics
    lane: str  # one delivery lane per destination (webhook URL, mailbox); an opaque key, never the secret
    pace: Pace | None
    send_resolved: bool

    def describe(self) -> str:
        """The destination for logs: host and redacted path, never a token or webhook secret."""
        ...

    def render(self, notification: Notification) -> list[Message]:
        """Messages for one notification, each within the platform's limits, in sending order."""
        ...

    async def send(self, message: Message) -> Result:
        """One attempt; classifies the answer, never raises for a platform or network failure."""
        ...

    async def close(self) -> None: ...
