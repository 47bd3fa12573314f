"""The channel registry: one line per channel type. Each type is a folder holding all of that channel."""

from __future__ import annotations

from bridge.channels import console, discord, email, slack, teams, webhook
from bridge.model import Channel, ChannelContext, ChannelSettings, ChannelType

__all__ = ["CHANNEL_TYPES", "create_channel"]

CHANNEL_TYPES: dict[str, ChannelType] = {
    "slack": slack.SLACK,
    "discord": discord.DISCORD,
    "teams": teams.TEAMS,
    "email": email.EMAIL,
    "webhook": webhook.WEBHOOK,
    "console": console.CONSOLE,
}


def create_channel(name: str, settings: ChannelSettings, ctx: ChannelContext) -> Channel:
    """The channel for `settings` (an instance of its type's settings model), named `name`."""
    kind = CHANNEL_TYPES.get(settings.type)
    if kind is None:
        raise ValueError(f"channel {name!r}: unknown type {settings.type!r}; known: {', '.join(CHANNEL_TYPES)}")
    if not isinstance(settings, kind.settings):
        raise TypeError(f"channel {name!r}: settings must be {kind.settings.__name__}, not {type(settings).__name__}")
    return kind.create(name, settings, ctx)
