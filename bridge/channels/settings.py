"""The settings model of each channel type: YAML keys are the field names, unknown keys are errors."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, field_validator

from bridge.channels.base import ChannelSettings, Pace

__all__ = [
    "ConsoleSettings",
    "DiscordSettings",
    "EmailSettings",
    "SlackSettings",
    "WebhookSettings",
    "pace_from_rate",
]


def pace_from_rate(rate: float | None) -> Pace | None:
    """The `rate` option (messages per second) as a Pace; None when unset."""
    if not rate or rate <= 0:
        return None
    return Pace(messages=1, per_seconds=1.0 / rate) if rate < 1 else Pace(messages=int(rate), per_seconds=1.0)


def _http_url(value: str) -> str:
    # The message never repeats the value: a webhook URL is a secret.
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


class _Settings(ChannelSettings):
    # Validation errors never echo the value: URLs, headers and passwords are secrets.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, populate_by_name=True)


class SlackSettings(_Settings):
    type: Literal["slack"] = "slack"
    webhook_url: str = Field(repr=False)
    # severity -> "here" | "channel" | user ids (U…/W…) | user group ids (S…)
    mentions: dict[str, list[str]] = Field(default_factory=dict)

    _check_url = field_validator("webhook_url")(_http_url)


class DiscordSettings(_Settings):
    type: Literal["discord"] = "discord"
    webhook_url: str = Field(repr=False)
    mention_roles: dict[str, list[str]] = Field(default_factory=dict)  # severity -> role ids
    mention_users: dict[str, list[str]] = Field(default_factory=dict)  # severity -> user ids
    username: str | None = None

    _check_url = field_validator("webhook_url")(_http_url)

    @field_validator("mention_roles", "mention_users")
    @classmethod
    def _snowflakes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for ids in value.values():
            for i in ids:
                if not str(i).isdigit():
                    raise ValueError(f"ids must be numeric Discord snowflakes, not {str(i)[:30]!r}")
        return {k: [str(i) for i in v] for k, v in value.items()}


class EmailSettings(_Settings):
    type: Literal["email"] = "email"
    host: str
    port: int = 587
    username: str | None = None
    password: str | None = Field(default=None, repr=False)
    tls: Literal["starttls", "ssl", "none"] = "starttls"
    from_: str = Field(alias="from")
    to: list[str]

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one recipient")
        for address in value:
            if "@" not in address or any(c in address for c in "\r\n,;<>"):
                raise ValueError(f"not a plain email address: {address[:60]!r}")
        return value


class WebhookSettings(_Settings):
    type: Literal["webhook"] = "webhook"
    url: str = Field(repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    template: str | None = None  # a template file name, looked up in BRIDGE_TEMPLATES_DIR then the defaults

    _check_url = field_validator("url")(_http_url)


class ConsoleSettings(_Settings):
    type: Literal["console"] = "console"
