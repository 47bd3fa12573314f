"""Microsoft Teams: Workflows webhooks with Adaptive Cards, paced below Teams' 4 per second per webhook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.channels.teams.channel import TeamsChannel
from bridge.channels.teams.settings import TeamsSettings
from bridge.model import ChannelType
from common.secrets import read_secret

__all__ = ["TEAMS", "TeamsChannel", "TeamsSettings"]


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]] | None:
    url = read_secret(env, "TEAMS_WEBHOOK_URL")
    return ({"webhook_url": url}, {"webhook_url": "TEAMS_WEBHOOK_URL"}) if url else None


TEAMS = ChannelType(
    name="teams",
    settings=TeamsSettings,
    create=TeamsChannel,
    from_env=_from_env,
    placeholder={"webhook_url": "https://prod-00.westus.logic.azure.com/workflows/0/render-only"},
)
