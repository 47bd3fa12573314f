"""Slack: an incoming webhook, or the Web API with a bot token (one message per alert group, edited in place);
Block Kit messages, paced to about one per second per destination."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.channels.slack.channel import SlackChannel
from bridge.channels.slack.settings import SlackSettings
from bridge.model import ChannelType
from common.errors import ConfigError
from common.secrets import env_value, read_secret

__all__ = ["SLACK", "SlackChannel", "SlackSettings"]


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]] | None:
    url = read_secret(env, "SLACK_WEBHOOK_URL")
    token = read_secret(env, "SLACK_BOT_TOKEN")
    channel = env_value(env, "SLACK_CHANNEL")
    api_url = env_value(env, "SLACK_API_URL")
    if url and token:
        raise ConfigError("SLACK_WEBHOOK_URL, SLACK_BOT_TOKEN: set one of them (the bot token can edit messages)")
    if token:
        if not channel:
            raise ConfigError("SLACK_CHANNEL: required with SLACK_BOT_TOKEN (a channel id like C0123, or #name)")
        settings = {"bot_token": token, "channel": channel, **({"api_url": api_url} if api_url else {})}
        names = {"bot_token": "SLACK_BOT_TOKEN", "channel": "SLACK_CHANNEL", "api_url": "SLACK_API_URL"}
        return settings, names
    if channel:
        raise ConfigError("SLACK_CHANNEL: needs SLACK_BOT_TOKEN (an incoming webhook posts to its own channel)")
    return ({"webhook_url": url}, {"webhook_url": "SLACK_WEBHOOK_URL"}) if url else None


SLACK = ChannelType(
    name="slack",
    settings=SlackSettings,
    create=SlackChannel,
    from_env=_from_env,
    placeholder={"webhook_url": "https://hooks.slack.com/services/T0/B0/render-only"},
)
