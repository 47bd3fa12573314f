"""Generic webhook channel: the original Alertmanager payload (or a template's output) POSTed with optional headers."""

from __future__ import annotations

import json

import aiohttp

from bridge.channels.base import ChannelContext, Message, Outcome, Result
from bridge.channels.http import SessionSource, classify, lane_key, redact_url
from bridge.channels.settings import WebhookSettings, pace_from_rate
from bridge.payload import Notification
from bridge.render.context import build_view
from bridge.render.engine import Templates

__all__ = ["WebhookChannel"]

TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)


class WebhookChannel:
    type = "webhook"

    def __init__(self, name: str, settings: WebhookSettings, ctx: ChannelContext) -> None:
        self.name = name
        self.lane = lane_key("webhook", settings.url)
        self.pace = pace_from_rate(settings.rate)  # none unless configured
        self.send_resolved = settings.send_resolved
        self._url = settings.url
        self._headers = dict(settings.headers)
        self._template = settings.template
        self._ctx = ctx
        self._templates = Templates("text", ctx.templates_dir) if settings.template else None
        self._http = SessionSource(ctx.session)

    def describe(self) -> str:
        return redact_url(self._url)

    def render(self, notification: Notification) -> list[Message]:
        if self._templates is None or self._template is None:
            return [Message(body=notification.raw, headers={"Content-Type": "application/json"})]
        view = build_view(notification, self._ctx)
        text = self._templates.render(self._template, group=view, alerts=view.alerts, payload=notification.raw)
        try:
            json.loads(text)
            content_type = "application/json"
        except ValueError:
            content_type = "text/plain; charset=utf-8"
        return [Message(body=text, headers={"Content-Type": content_type})]

    async def send(self, message: Message) -> Result:
        data = message.body if isinstance(message.body, str) else json.dumps(message.body)
        headers = {**message.headers, **self._headers}
        try:
            async with self._http.get().post(
                self._url, data=data.encode(), headers=headers, timeout=TIMEOUT, allow_redirects=False
            ) as resp:
                await resp.read()
                return classify(resp.status, resp.headers)
        except TimeoutError:
            return Result(Outcome.RETRY, "timeout")
        except aiohttp.ClientError:
            # The exception text names the URL, a secret: keep only the class of failure.
            return Result(Outcome.RETRY, "connection_error")

    async def close(self) -> None:
        await self._http.close()
