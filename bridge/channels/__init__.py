"""The channel registry: settings model per type, a factory, and the size check used by check-config."""

from __future__ import annotations

import importlib

from bridge.channels.base import Channel, ChannelContext, ChannelSettings, Message
from bridge.channels.settings import (
    ConsoleSettings,
    DiscordSettings,
    EmailSettings,
    SlackSettings,
    WebhookSettings,
)

__all__ = ["CHANNEL_TYPES", "create_channel", "violations"]

CHANNEL_TYPES: dict[str, type[ChannelSettings]] = {
    "slack": SlackSettings,
    "discord": DiscordSettings,
    "email": EmailSettings,
    "webhook": WebhookSettings,
    "console": ConsoleSettings,
}

# Imported on first use: the channel modules import the renderer, which imports this package's base.
_IMPLEMENTATIONS = {
    "slack": ("bridge.channels.slack", "SlackChannel"),
    "discord": ("bridge.channels.discord", "DiscordChannel"),
    "email": ("bridge.channels.email", "EmailChannel"),
    "webhook": ("bridge.channels.webhook", "WebhookChannel"),
    "console": ("bridge.channels.console", "ConsoleChannel"),
}


def create_channel(name: str, settings: ChannelSettings, ctx: ChannelContext) -> Channel:
    """The channel for `settings` (an instance of one of CHANNEL_TYPES' models), named `name`."""
    try:
        module_name, class_name = _IMPLEMENTATIONS[settings.type]
    except KeyError:
        known = ", ".join(CHANNEL_TYPES)
        raise ValueError(f"channel {name!r}: unknown type {settings.type!r}; known: {known}") from None
    expected = CHANNEL_TYPES[settings.type]
    if not isinstance(settings, expected):
        raise TypeError(f"channel {name!r}: settings must be {expected.__name__}, not {type(settings).__name__}")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls(name, settings, ctx)


def violations(channel: Channel, message: Message) -> list[str]:
    """Why the platform would reject `message` for its size or shape; empty when it fits."""
    from bridge.render import limits

    check = limits.CHECKS.get(getattr(channel, "type", ""))
    return check(message.body) if check else []
