"""Generic webhook: the Alertmanager payload forwarded as received, or a user template's output."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.channels.webhook.channel import WebhookChannel
from bridge.channels.webhook.settings import WebhookSettings
from bridge.model import ChannelType
from common.secrets import read_secret

__all__ = ["WEBHOOK", "WebhookChannel", "WebhookSettings"]


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]] | None:
    url = read_secret(env, "WEBHOOK_URL")
    return ({"url": url}, {"url": "WEBHOOK_URL"}) if url else None


WEBHOOK = ChannelType(
    name="webhook",
    settings=WebhookSettings,
    create=WebhookChannel,
    from_env=_from_env,
    placeholder={"url": "http://localhost/render-only"},
)
