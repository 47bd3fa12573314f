"""The types every layer of the bridge shares: the notification, the channel interface and what crosses it.

This module imports nothing of the bridge, so that intake, routing, rendering, channels and delivery can all
depend on it without depending on each other.

A channel knows its platform: how to render a notification into messages that fit the platform's limits,
and how to send one message and classify the answer. It never retries, sleeps or counts: the dispatcher
does that, in one place, for every channel (as Alertmanager's notify package does).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import msgspec
import orjson
from pydantic import BaseModel, ConfigDict

__all__ = [
    "Alert",
    "Channel",
    "ChannelContext",
    "ChannelSettings",
    "ChannelType",
    "Extras",
    "Message",
    "Notification",
    "Outcome",
    "Pace",
    "Result",
]


# ---------------------------------------------------------------- the notification


class Alert(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One alert of a notification. A msgspec Struct, not a dataclass: built in C, twenty per payload at intake,
    and untracked by the garbage collector (it holds strings, dicts of strings and times: no cycles)."""

    status: str  # "firing" | "resolved"
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime
    ends_at: datetime | None  # None while firing (Alertmanager sends the zero time)
    generator_url: str
    fingerprint: str

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")

    @property
    def severity(self) -> str:
        return self.labels.get("severity", "none")


@dataclass(frozen=True)
class Extras:
    """What the bridge adds to a notification from Prometheus before rendering; empty when it has nothing."""

    chart: bytes | None = field(default=None, repr=False)  # PNG of the alerting series over the last hour
    chart_url: str | None = None  # where the bridge serves that PNG (BRIDGE_PUBLIC_URL/charts/<id>.png)
    fired: Mapping[str, int] = field(default_factory=dict)  # alert fingerprint -> times it fired in the last 24 h


@dataclass(frozen=True)
class Notification:
    """One Alertmanager webhook (payload version 4), validated."""

    receiver: str
    status: str  # "firing" | "resolved", as Alertmanager sent it
    alerts: tuple[Alert, ...]
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str
    group_key: str
    truncated_alerts: int = 0
    version: str = "4"
    body: bytes = field(default=b"", compare=False, repr=False)  # the JSON body, exactly as received
    extras: Extras = field(default_factory=Extras, compare=False, repr=False)  # charts, firing history

    @functools.cached_property
    def raw(self) -> dict[str, Any]:
        """The body decoded, for templates that read fields the model leaves out; decoded on first use only
        (intake and forwarding never need it)."""
        return orjson.loads(self.body) if self.body else {}

    @property
    def state(self) -> str:
        """The group's state as every channel shows it: firing while any alert fires, else resolved.

        Decided from the alerts, not the group's `status`: senders disagree (vmalert sends a firing group
        whose only alert is resolved), and a message must not read FIRING on one channel and RESOLVED on another.
        """
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def resolved(self) -> list[Alert]:
        return [a for a in self.alerts if a.status == "resolved"]


# ---------------------------------------------------------------- what crosses the channel interface


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
    # The platform's reference of the message just posted (a Discord message id, a Slack channel and ts): kept
    # per alert group and channel, handed back in `Message.ref` so later notifications of the group edit it.
    ref: str | None = None


@dataclass(frozen=True)
class Pace:
    """Proactive pacing of one lane: at most `messages` per `per_seconds`."""

    messages: int
    per_seconds: float

    @classmethod
    def from_rate(cls, rate: float | None) -> Pace | None:
        """The `rate` option (messages per second) as a Pace; None when unset."""
        if not rate or rate <= 0:
            return None
        return cls(messages=1, per_seconds=1.0 / rate) if rate < 1 else cls(messages=int(rate), per_seconds=1.0)


@dataclass
class Message:
    """One request to a platform: a JSON body, an email, or text; `part`/`parts` number continuations."""

    body: Any
    part: int = 1
    parts: int = 1
    truncated: bool = False  # something was cut or collapsed to fit: counted in alert_bridge_truncations_total
    headers: dict[str, str] = field(default_factory=dict)
    # Set by the dispatcher: the `Result.ref` of this part posted earlier for the same alert group; the channel
    # edits that message instead of posting a new one. None: post.
    ref: str | None = None
    reply: str = ""  # a short line for the message's thread when it is edited (Slack: "resolved after 12m")
    files: dict[str, bytes] = field(default_factory=dict)  # file name -> content, sent with a first post (charts)


@dataclass(frozen=True)
class ChannelContext:
    """What channels share: the app's HTTP session, external URLs for links, template overrides, time zone."""

    session: aiohttp.ClientSession | None
    alertmanager_url: str | None = None
    grafana_url: str | None = None
    prometheus_url: str | None = None
    runbook_base_url: str | None = None
    templates_dir: Path | None = None
    max_parts: int = 3  # continuation messages before "+N more alerts"
    timezone: tzinfo | None = None  # times are shown in this zone; None: UTC


class ChannelSettings(BaseModel):
    """Options every channel type accepts; each type's settings model extends this one.

    Validation errors never echo the value: URLs, headers and passwords are secrets.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)

    type: str
    send_resolved: bool = True
    # Proactive pacing for types that have none by default (webhook, email): messages per second.
    rate: float | None = None


class Channel(Protocol):
    """One destination of one type. Optional beside these: `render_body`, a callable `(body: bytes) ->
    list[Message]` on a channel that sends a stored body exactly as Alertmanager sent it (a webhook without a
    template), absent or None on the others: the dispatcher then never decodes a body for it.
    """

    type: str  # the channel type: "slack", "discord", …
    name: str  # the configured name: the `channel` label in metrics
    lane: str  # one delivery lane per destination (webhook URL, mailbox); an opaque key, never the secret
    pace: Pace | None

    def describe(self) -> str:
        """The destination for logs: host and redacted path, never a token or webhook secret."""
        ...

    def render(self, notification: Notification) -> list[Message]:
        """Messages for one notification, each within the platform's limits, in sending order."""
        ...

    def violations(self, message: Message) -> list[str]:
        """Why the platform would reject `message` for its size or shape; empty when it fits."""
        ...

    async def send(self, message: Message) -> Result:
        """One attempt; classifies the answer, never raises for a platform or network failure."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class ChannelType:
    """One entry of the channel registry: everything the rest of the bridge needs to know of a channel type."""

    name: str  # the `type:` of a YAML channel
    settings: type[ChannelSettings]
    create: Callable[[str, Any, ChannelContext], Channel]  # (name, settings of this type, context)
    # The quick-start channel from the environment (e.g. SLACK_WEBHOOK_URL): its settings keys, and for each
    # key the variable to name in errors; None when the environment does not ask for one.
    from_env: Callable[[Mapping[str, str]], tuple[dict[str, Any], dict[str, str]] | None] = lambda env: None
    # Defaults from the environment for YAML channels of this type that omit them (SMTP_* for email).
    env_defaults: Callable[[Mapping[str, str]], dict[str, Any]] = lambda env: {}
    # Settings for `alert-bridge render --channel TYPE` when no such channel is configured: never contacted.
    placeholder: Mapping[str, Any] = field(default_factory=dict)
