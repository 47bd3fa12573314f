"""Slack channel settings: YAML keys are the field names, unknown keys are errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bridge.channels.http import http_url
from bridge.model import ChannelSettings

__all__ = ["SlackSettings"]


class SlackSettings(ChannelSettings):
    type: Literal["slack"] = "slack"
    webhook_url: str = Field(repr=False)
    # severity -> "here" | "channel" | user ids (U…/W…) | user group ids (S…)
    mentions: dict[str, list[str]] = Field(default_factory=dict)

    _check_url = field_validator("webhook_url")(http_url)
