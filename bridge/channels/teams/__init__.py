"""Microsoft Teams: Workflows webhooks with Adaptive Cards, paced below Teams' 4 per second per webhook."""

from __future__ import annotations

from bridge.channels.http import url_from_env
from bridge.channels.teams.channel import TeamsChannel
from bridge.channels.teams.settings import TeamsSettings
from bridge.model import ChannelType

__all__ = ["TEAMS", "TeamsChannel", "TeamsSettings"]


TEAMS = ChannelType(
    name="teams",
    settings=TeamsSettings,
    create=TeamsChannel,
    from_env=url_from_env("TEAMS_WEBHOOK_URL", "webhook_url"),
    placeholder={"webhook_url": "https://prod-00.westus.logic.azure.com/workflows/0/render-only"},
)
