"""Slack: incoming webhooks, Block Kit messages, paced to about one per second per webhook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.channels.slack.channel import SlackChannel
from bridge.channels.slack.settings import SlackSettings
from bridge.model import ChannelType
from common.secrets import read_secret

__all__ = ["SLACK", "SlackChannel", "SlackSettings"]


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]] | None:
    url = read_secret(env, "SLACK_WEBHOOK_URL")
    return ({"webhook_url": url}, {"webhook_url": "SLACK_WEBHOOK_URL"}) if url else None


SLACK = ChannelType(
    name="slack",
    settings=SlackSettings,
    create=SlackChannel,
    from_env=_from_env,
    placeholder={"webhook_url": "https://hooks.slack.com/services/T0/B0/render-only"},
)
