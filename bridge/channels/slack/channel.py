"""Slack channel: Block Kit through slack-sdk's async webhook client on the bridge's own session."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bridge.channels.http import SessionSource, classify, lane_key, redact_url
from bridge.channels.slack import limits
from bridge.channels.slack.escape import mention
from bridge.channels.slack.render import Blocks, templates
from bridge.channels.slack.settings import SlackSettings
from bridge.model import ChannelContext, Message, Notification, Outcome, Pace, Result
from bridge.render.context import build_view
from bridge.render.fit import fit

__all__ = ["SLACK_PACE", "SlackChannel"]

# Slack docs, rate limits: about one message per second per webhook, short bursts tolerated.
SLACK_PACE = Pace(messages=1, per_seconds=1.0)
TIMEOUT_SECONDS = 30.0

# slack-sdk logs the webhook URL (a secret) at debug level: give it a logger that never does.
_SDK_LOGGER = logging.getLogger("bridge.channels.slack.sdk")
_SDK_LOGGER.setLevel(logging.WARNING)
_SDK_LOGGER.propagate = False


class SlackChannel:
    type = "slack"

    def __init__(self, name: str, settings: SlackSettings, ctx: ChannelContext) -> None:
        self.name = name
        self.lane = lane_key("slack", settings.webhook_url)
        self.pace = SLACK_PACE
        self._url = settings.webhook_url
        self._mentions = settings.mentions
        self._ctx = ctx
        self._templates = templates(ctx.templates_dir)
        self._http = SessionSource(ctx.session)

    def describe(self) -> str:
        return redact_url(self._url)

    def render(self, notification: Notification) -> list[Message]:
        view = build_view(notification, self._ctx)
        tokens = self._mentions.get(view.severity, []) if view.status == "firing" else []
        return fit(view, Blocks(self._templates, " ".join(mention(t) for t in tokens)), self._ctx.max_parts)

    def violations(self, message: Message) -> list[str]:
        return limits.violations(message.body)

    async def send(self, message: Message) -> Result:
        # No retry handlers: the dispatcher owns retries, backoff and Retry-After.
        client = AsyncWebhookClient(self._url, session=self._http.get(), retry_handlers=[], logger=_SDK_LOGGER)
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                resp = await client.send_dict(message.body)
        except TimeoutError:
            return Result(Outcome.RETRY, "timeout")
        except aiohttp.ClientError:
            return Result(Outcome.RETRY, "connection_error")
        code = (resp.body or "").strip() if resp.status_code >= 400 else ""
        return classify(resp.status_code, resp.headers or {}, code=code)

    async def close(self) -> None:
        await self._http.close()
