"""Slack channel: Block Kit through slack-sdk's async clients on the bridge's own session; an incoming webhook,
or with a bot token chat.postMessage, then chat.update of that message and a reply in its thread."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bridge.channels.http import SessionSource, classify, lane_key, redact_url
from bridge.channels.slack import limits
from bridge.channels.slack.escape import mention
from bridge.channels.slack.render import Blocks, templates
from bridge.channels.slack.settings import SlackSettings
from bridge.model import ChannelContext, Message, Notification, Outcome, Pace, Result
from bridge.render.context import build_view
from bridge.render.fit import fit, truncate

__all__ = ["SLACK_PACE", "SlackChannel"]

# Slack docs, rate limits: about one message per second per webhook or channel, short bursts tolerated.
SLACK_PACE = Pace(messages=1, per_seconds=1.0)
TIMEOUT_SECONDS = 30.0
REPLY_MAX = 300

# Web API errors (HTTP 200, `ok: false`) worth trying again; any other one is final.
_TRANSIENT = frozenset({"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"})
# chat.update cannot edit that message (deleted, or not the bot's): post it anew.
_GONE = frozenset({"message_not_found", "cant_update_message", "edit_window_closed"})

_WORD = re.compile(r"[a-z0-9_]{1,40}")

# slack-sdk logs the webhook URL (a secret) at debug level: give it a logger that never does.
_SDK_LOGGER = logging.getLogger("bridge.channels.slack.sdk")
_SDK_LOGGER.setLevel(logging.WARNING)
_SDK_LOGGER.propagate = False


class SlackChannel:
    type = "slack"

    def __init__(self, name: str, settings: SlackSettings, ctx: ChannelContext) -> None:
        self.name = name
        self._s = settings
        destination = settings.webhook_url or f"{settings.api_url}|{settings.channel}|{settings.bot_token}"
        self.lane = lane_key("slack", destination)
        self.pace = SLACK_PACE
        self._mentions = settings.mentions
        self._ctx = ctx
        self._templates = templates(ctx.templates_dir)
        self._http = SessionSource(ctx.session)

    def describe(self) -> str:
        if self._s.webhook_url:
            return redact_url(self._s.webhook_url)
        return f"{redact_url(self._s.api_url)} chat.postMessage to {self._s.channel}"

    def render(self, notification: Notification) -> list[Message]:
        view = build_view(notification, self._ctx)
        tokens = self._mentions.get(view.severity, []) if view.status == "firing" else []
        messages = fit(view, Blocks(self._templates, " ".join(mention(t) for t in tokens)), self._ctx.max_parts)
        reply = truncate(self._templates.render("slack.reply.j2", group=view).strip(), REPLY_MAX)[0]
        for m in messages:
            m.reply = reply
        if view.chart_url and messages:
            # Slack fetches the image from the bridge itself (BRIDGE_PUBLIC_URL/charts/<id>.png).
            image = {"type": "image", "image_url": str(view.chart_url), "alt_text": f"{view.title}: the last hour"}
            blocks = messages[0].body["attachments"][0]["blocks"]
            blocks.append(image)
            if self.violations(messages[0]):
                blocks.pop()  # no room: the message matters more than its picture
        return messages

    def violations(self, message: Message) -> list[str]:
        return limits.violations(message.body)

    async def send(self, message: Message) -> Result:
        if self._s.webhook_url:
            return await self._webhook(message)
        client = AsyncWebClient(
            token=self._s.bot_token,
            base_url=self._s.api_url,
            session=self._http.get(),
            timeout=int(TIMEOUT_SECONDS),
            retry_handlers=[],  # the dispatcher owns retries, backoff and Retry-After
            logger=_SDK_LOGGER,
        )
        if message.ref and self._s.update_in_place:
            channel, _, ts = message.ref.partition("/")
            result, _ = await self._call(client.chat_update(channel=channel, ts=ts, **message.body))
            if result.outcome is Outcome.DELIVERED:
                if message.reply and message.part == 1:
                    reply, _ = await self._call(
                        client.chat_postMessage(channel=channel, thread_ts=ts, text=message.reply)
                    )
                    # A reply that may go later makes the whole send retry (the edit is idempotent); one Slack
                    # refuses for good is not worth the delivery: the message itself is up to date.
                    if reply.outcome is Outcome.RETRY:
                        return reply
                return dataclasses.replace(result, ref=message.ref)
            if result.reason not in {f"slack_{e}" for e in _GONE}:
                return result
        result, data = await self._call(client.chat_postMessage(channel=self._s.channel, **message.body))
        channel, ts = data.get("channel"), data.get("ts")
        if result.outcome is Outcome.DELIVERED and self._s.update_in_place and channel and ts:
            result = dataclasses.replace(result, ref=f"{channel}/{ts}")
        return result

    async def _call(self, call: Awaitable[Any]) -> tuple[Result, dict[str, Any]]:
        """One Web API call, classified; with the answer's data when it succeeded."""
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                resp = await call
        except SlackApiError as exc:
            status = exc.response.status_code
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            error = str(data.get("error", ""))
            if status != 200:
                return classify(status, exc.response.headers or {}, code=error), {}
            outcome = Outcome.RETRY if error in _TRANSIENT else Outcome.PERMANENT
            # Only a short machine word goes into the reason: never echo an answer that may hold anything.
            return Result(outcome, f"slack_{error}" if _WORD.fullmatch(error) else "slack_error"), {}
        except TimeoutError:
            return Result(Outcome.RETRY, "timeout"), {}
        except aiohttp.ClientError:
            return Result(Outcome.RETRY, "connection_error"), {}
        data = resp.data if isinstance(resp.data, dict) else {}
        return classify(resp.status_code, resp.headers or {}), data

    async def _webhook(self, message: Message) -> Result:
        client = AsyncWebhookClient(
            self._s.webhook_url, session=self._http.get(), retry_handlers=[], logger=_SDK_LOGGER
        )
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
