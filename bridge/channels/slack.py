"""Slack channel: Block Kit through slack-sdk's async webhook client on the bridge's own session."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bridge.channels.base import ChannelContext, Message, Outcome, Pace, Result
from bridge.channels.http import SessionSource, classify, lane_key, redact_url
from bridge.channels.settings import SlackSettings
from bridge.payload import Notification
from bridge.render import limits
from bridge.render.context import AlertView, GroupView, build_view
from bridge.render.engine import Templates
from bridge.render.fit import Renderer, cap_alert, fit, truncate

__all__ = ["SLACK_PACE", "SlackChannel"]

# Slack docs, rate limits: about one message per second per webhook, short bursts tolerated.
SLACK_PACE = Pace(messages=1, per_seconds=1.0)
TIMEOUT_SECONDS = 30.0
# Budgets inside the platform limits, so that one long annotation cannot crowd out the links.
DETAIL_SUMMARY = 300
DETAIL_DESCRIPTION = 1500
LINE_SUMMARY = 150
LINE_MAX = 700
FALLBACK_MAX = 3000

# slack-sdk logs the webhook URL (a secret) at debug level: give it a logger that never does.
_SDK_LOGGER = logging.getLogger("bridge.channels.slack.sdk")
_SDK_LOGGER.setLevel(logging.WARNING)
_SDK_LOGGER.propagate = False


def _mention(token: str) -> str:
    if token in ("here", "channel", "everyone"):
        return f"<!{token}>"
    if token.startswith("S"):
        return f"<!subteam^{token}>"
    return f"<@{token}>"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


class _Blocks(Renderer):
    """Builds Slack bodies: a header, a context line, sections; coloured by severity through an attachment."""

    def __init__(self, templates: Templates, mentions: str) -> None:
        self.t = templates
        self.mentions = mentions
        self._lines: dict[int, str] = {}

    def _body(self, view: GroupView, alerts: list[AlertView], blocks: list[dict], part: int, parts: int) -> dict:
        fallback = self.t.render("slack.fallback.j2", group=view, alerts=alerts, part=part, parts=parts)
        text, _ = truncate(f"{self.mentions} {fallback}".strip(), FALLBACK_MAX)
        return {"text": text, "attachments": [{"color": view.colour_hex, "blocks": blocks}]}

    def _head(self, view: GroupView, part: int, parts: int) -> list[dict]:
        title, _ = truncate(
            self.t.render("slack.title.j2", group=view, part=part, parts=parts).strip(), limits.SLACK_MAX_HEADER
        )
        context, _ = truncate(self.t.render("slack.context.j2", group=view).strip(), limits.SLACK_MAX_SECTION_TEXT)
        blocks: list[dict] = [{"type": "header", "text": {"type": "plain_text", "text": title, "emoji": True}}]
        if context:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
        return blocks

    def _more(self, view: GroupView, more: int) -> list[dict]:
        if not more:
            return []
        text, _ = truncate(self.t.render("slack.more.j2", group=view, more=more).strip(), limits.SLACK_MAX_SECTION_TEXT)
        return [_mrkdwn(text)]

    def full(self, view: GroupView, alerts: list[AlertView], more: int) -> tuple[Any, bool] | None:
        if 2 * len(alerts) + 3 > limits.SLACK_MAX_BLOCKS:
            return None  # a section and a divider per alert would not fit: go straight to the collapsed form
        blocks = self._head(view, 1, 1)
        cut = False
        for a in alerts:
            a, cut_a = cap_alert(a, DETAIL_SUMMARY, DETAIL_DESCRIPTION)
            text, cut_t = truncate(self.t.render("slack.alert.j2", a=a, group=view).strip(), 3000)
            cut = cut or cut_a or cut_t
            blocks += [_mrkdwn(text), {"type": "divider"}]
        if blocks[-1]["type"] == "divider":
            blocks.pop()
        blocks += self._more(view, more)
        return self._body(view, alerts, blocks, 1, 1), cut

    def _line(self, view: GroupView, a: AlertView) -> str:
        key = id(a)  # the view outlives this renderer, so ids are stable for its lifetime
        if key not in self._lines:
            capped, _ = cap_alert(a, LINE_SUMMARY, 0)
            self._lines[key] = truncate(self.t.render("slack.line.j2", a=capped, group=view).strip(), LINE_MAX)[0]
        return self._lines[key]

    def page(self, view: GroupView, alerts: list[AlertView], part: int, parts: int, more: int) -> Any:
        blocks = self._head(view, part, parts)
        chunk = ""
        for a in alerts:
            line = self._line(view, a)
            if chunk and limits.measure(chunk) + 1 + limits.measure(line) > limits.SLACK_MAX_SECTION_TEXT:
                blocks.append(_mrkdwn(chunk))
                chunk = line
            else:
                chunk = f"{chunk}\n{line}" if chunk else line
        if chunk:
            blocks.append(_mrkdwn(chunk))
        blocks += self._more(view, more)
        return self._body(view, alerts, blocks, part, parts)

    def minimal(self, view: GroupView, more: int) -> Any:
        return self._body(view, [], self._head(view, 1, 1)[:1] + self._more(view, more), 1, 1)

    def check(self, body: Any) -> list[str]:
        return limits.slack_violations(body)


class SlackChannel:
    type = "slack"

    def __init__(self, name: str, settings: SlackSettings, ctx: ChannelContext) -> None:
        self.name = name
        self.lane = lane_key("slack", settings.webhook_url)
        self.pace = SLACK_PACE
        self.send_resolved = settings.send_resolved
        self._url = settings.webhook_url
        self._mentions = settings.mentions
        self._ctx = ctx
        self._templates = Templates("slack", ctx.templates_dir)
        self._http = SessionSource(ctx.session)

    def describe(self) -> str:
        return redact_url(self._url)

    def render(self, notification: Notification) -> list[Message]:
        view = build_view(notification, self._ctx)
        tokens = self._mentions.get(view.severity, []) if view.status == "firing" else []
        return fit(view, _Blocks(self._templates, " ".join(_mention(t) for t in tokens)), self._ctx.max_parts)

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
