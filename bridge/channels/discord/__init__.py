"""Discord: execute-webhook with embeds, paced to Discord's 5 requests per 2 s per webhook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.channels.discord.channel import DiscordChannel
from bridge.channels.discord.settings import DiscordSettings
from bridge.model import ChannelType
from common.secrets import read_secret

__all__ = ["DISCORD", "DiscordChannel", "DiscordSettings"]


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]] | None:
    url = read_secret(env, "DISCORD_WEBHOOK_URL")
    return ({"webhook_url": url}, {"webhook_url": "DISCORD_WEBHOOK_URL"}) if url else None


DISCORD = ChannelType(
    name="discord",
    settings=DiscordSettings,
    create=DiscordChannel,
    from_env=_from_env,
    placeholder={"webhook_url": "https://discord.com/api/webhooks/0/render-only"},
)
