"""Discord channel settings: YAML keys are the field names, unknown keys are errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bridge.channels.http import http_url
from bridge.model import ChannelSettings

__all__ = ["DiscordSettings"]


class DiscordSettings(ChannelSettings):
    type: Literal["discord"] = "discord"
    webhook_url: str = Field(repr=False)
    mention_roles: dict[str, list[str]] = Field(default_factory=dict)  # severity -> role ids
    mention_users: dict[str, list[str]] = Field(default_factory=dict)  # severity -> user ids
    username: str | None = None
    # Later notifications of an alert group edit its first message (colour and title follow the state).
    update_in_place: bool = True

    _check_url = field_validator("webhook_url")(http_url)

    @field_validator("mention_roles", "mention_users")
    @classmethod
    def _snowflakes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for ids in value.values():
            for i in ids:
                if not str(i).isdigit():
                    raise ValueError(f"ids must be numeric Discord snowflakes, not {str(i)[:30]!r}")
        return {k: [str(i) for i in v] for k, v in value.items()}
