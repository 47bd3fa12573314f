"""Generic webhook: the Alertmanager payload forwarded as received, or a user template's output."""

from __future__ import annotations

from bridge.channels.http import url_from_env
from bridge.channels.webhook.channel import WebhookChannel
from bridge.channels.webhook.settings import WebhookSettings
from bridge.model import ChannelType

__all__ = ["WEBHOOK", "WebhookChannel", "WebhookSettings"]


WEBHOOK = ChannelType(
    name="webhook",
    settings=WebhookSettings,
    create=WebhookChannel,
    from_env=url_from_env("WEBHOOK_URL", "url"),
    placeholder={"url": "http://localhost/render-only"},
)
