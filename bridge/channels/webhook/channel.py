"""Generic webhook channel: the Alertmanager payload forwarded byte for byte (or a template's output), with headers."""

from __future__ import annotations

import json

from bridge.channels.http import SessionSource, classify, exchange, lane_key, redact_url
from bridge.channels.webhook.settings import WebhookSettings
from bridge.model import ChannelContext, Message, Notification, Pace, Result
from bridge.render.context import build_view
from bridge.render.engine import Templates

__all__ = ["WebhookChannel"]

_JSON = {"Content-Type": "application/json"}


class WebhookChannel:
    type = "webhook"

    def __init__(self, name: str, settings: WebhookSettings, ctx: ChannelContext) -> None:
        self.name = name
        self.lane = lane_key("webhook", settings.url)
        self.pace = Pace.from_rate(settings.rate)  # none unless configured
        self._url = settings.url
        self._headers = dict(settings.headers)
        self._template = settings.template
        self._ctx = ctx
        self._http = SessionSource(ctx.session)
        # No templates of its own: a `template` is the user's, from BRIDGE_TEMPLATES_DIR.
        self._templates = Templates(ctx.templates_dir) if settings.template and ctx.templates_dir else None
        # Without a template the body goes out as received: the dispatcher hands it over undecoded.
        self.render_body = self._forward if self._templates is None else None

    def describe(self) -> str:
        return redact_url(self._url)

    def _forward(self, body: bytes) -> list[Message]:
        """The body as Alertmanager sent it: same bytes, same spacing, non-ASCII as it was."""
        return [Message(body=body, headers=dict(_JSON))]

    def render(self, notification: Notification) -> list[Message]:
        if self.render_body is not None:
            return self.render_body(notification.body)
        view = build_view(notification, self._ctx)
        text = self._templates.render(self._template, group=view, alerts=view.alerts, payload=notification.raw)
        try:
            json.loads(text)
            content_type = "application/json"
        except ValueError:
            content_type = "text/plain; charset=utf-8"
        return [Message(body=text.encode(), headers={"Content-Type": content_type})]

    def violations(self, message: Message) -> list[str]:
        return []  # no documented limit: the receiver is the user's own

    async def send(self, message: Message) -> Result:
        body = message.body if isinstance(message.body, bytes) else json.dumps(message.body).encode()
        headers = {**message.headers, **self._headers}
        answer = await exchange(self._http.get(), "POST", self._url, data=body, headers=headers)
        return answer if isinstance(answer, Result) else classify(answer.status, answer.headers)

    async def close(self) -> None:
        await self._http.close()
