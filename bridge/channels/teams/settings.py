"""Teams channel settings: YAML keys are the field names, unknown keys are errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bridge.channels.http import http_url
from bridge.model import ChannelSettings

__all__ = ["TeamsSettings"]


class TeamsSettings(ChannelSettings):
    type: Literal["teams"] = "teams"
    # A Workflows "When a Teams webhook request is received" URL; its `sig=` query parameter is the secret.
    webhook_url: str = Field(repr=False)

    _check_url = field_validator("webhook_url")(http_url)
