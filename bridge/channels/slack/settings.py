"""Slack channel settings: YAML keys are the field names, unknown keys are errors."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bridge.channels.http import http_url
from bridge.model import ChannelSettings

__all__ = ["SLACK_API_URL", "SlackSettings"]

SLACK_API_URL = "https://slack.com/api/"
_MENTION = re.compile(r"here|channel|everyone|[SUW][A-Z0-9]{2,20}")


class SlackSettings(ChannelSettings):
    """An incoming webhook (`webhook_url`), or the Web API with a bot token (`bot_token` and `channel`)."""

    type: Literal["slack"] = "slack"
    webhook_url: str | None = Field(default=None, repr=False)
    bot_token: str | None = Field(default=None, repr=False)  # xoxb-…: chat.postMessage, then chat.update
    channel: str | None = None  # a channel id (C…) or name (#alerts) the bot is a member of
    api_url: str = SLACK_API_URL  # the Web API's base, for a proxy or a test server
    # With a bot token, later notifications of an alert group edit its message and reply in its thread.
    update_in_place: bool = True
    # severity -> "here" | "channel" | user ids (U…/W…) | user group ids (S…)
    mentions: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("webhook_url", "api_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else http_url(value)

    @field_validator("mentions")
    @classmethod
    def _mention_ids(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        # Only these can become a mention: anything else could carry markup into the message.
        for ids in value.values():
            for i in ids:
                if not _MENTION.fullmatch(str(i)):
                    raise ValueError(
                        f"mentions are here, channel, everyone, or Slack ids (S…, U…, W…), not {str(i)[:30]!r}"
                    )
        return {k: [str(i) for i in v] for k, v in value.items()}

    @model_validator(mode="after")
    def _one_way(self) -> SlackSettings:
        if (self.webhook_url is None) == (self.bot_token is None):
            raise ValueError("set either webhook_url, or bot_token with channel")
        if self.bot_token is not None and not self.channel:
            raise ValueError("channel is required with bot_token")
        return self
