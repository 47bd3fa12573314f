"""Discord: execute-webhook with embeds, paced to Discord's 5 requests per 2 s per webhook."""

from __future__ import annotations

from bridge.channels.discord.channel import DiscordChannel
from bridge.channels.discord.settings import DiscordSettings
from bridge.channels.http import url_from_env
from bridge.model import ChannelType

__all__ = ["DISCORD", "DiscordChannel", "DiscordSettings"]


DISCORD = ChannelType(
    name="discord",
    settings=DiscordSettings,
    create=DiscordChannel,
    from_env=url_from_env("DISCORD_WEBHOOK_URL", "webhook_url"),
    placeholder={"webhook_url": "https://discord.com/api/webhooks/0/render-only"},
)
