"""Generic webhook channel settings: YAML keys are the field names, unknown keys are errors."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from bridge.channels.http import http_url
from bridge.model import ChannelSettings

__all__ = ["WebhookSettings"]


class WebhookSettings(ChannelSettings):
    type: Literal["webhook"] = "webhook"
    url: str = Field(repr=False)
    headers: dict[str, str] = Field(default_factory=dict, repr=False)
    template: str | None = None  # a template file name, looked up in BRIDGE_TEMPLATES_DIR

    _check_url = field_validator("url")(http_url)
