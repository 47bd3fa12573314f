"""Discord channel: execute-webhook with `wait=true`, later notifications of a group edit that message (PATCH);
mentions only in `content` and only for configured ids."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import aiohttp
from yarl import URL

from bridge.channels.discord import limits
from bridge.channels.discord.render import Embeds, markdown_templates, text_templates
from bridge.channels.discord.settings import DiscordSettings
from bridge.channels.http import SessionSource, classify, exchange, lane_key, redact_url
from bridge.model import ChannelContext, Message, Notification, Outcome, Pace, Result
from bridge.render.context import GroupView, build_view
from bridge.render.fit import fit, truncate

__all__ = ["DISCORD_PACE", "DiscordChannel"]

# Discord API docs, rate limits: about 5 requests per 2 s per webhook (the headers, when given, take over).
DISCORD_PACE = Pace(messages=5, per_seconds=2.0)
CHART_FILE = "chart.png"


class DiscordChannel:
    type = "discord"

    def __init__(self, name: str, settings: DiscordSettings, ctx: ChannelContext) -> None:
        self.name = name
        self.lane = lane_key("discord", settings.webhook_url)
        self.pace = DISCORD_PACE
        self._url = URL(settings.webhook_url).update_query(wait="true")  # 200 with the message, not a blind 204
        self._settings = settings
        self._ctx = ctx
        self._md = markdown_templates(ctx.templates_dir)
        self._text = text_templates(ctx.templates_dir)
        self._http = SessionSource(ctx.session)

    def describe(self) -> str:
        return redact_url(self._settings.webhook_url)

    def _head(self, view: GroupView) -> dict[str, Any]:
        firing = view.status == "firing"
        roles = self._settings.mention_roles.get(view.severity, []) if firing else []
        users = self._settings.mention_users.get(view.severity, []) if firing else []
        # Pings come only from `content`, and allowed_mentions lets through exactly the configured ids.
        head: dict[str, Any] = {"allowed_mentions": {"parse": [], "roles": roles[:100], "users": users[:100]}}
        content = " ".join([f"<@&{r}>" for r in roles] + [f"<@{u}>" for u in users])
        if content:
            head["content"] = truncate(content, limits.DISCORD_MAX_CONTENT)[0]
        if self._settings.username:
            head["username"] = truncate(self._settings.username, limits.DISCORD_MAX_USERNAME)[0]
        return head

    def render(self, notification: Notification) -> list[Message]:
        view = build_view(notification, self._ctx)
        messages = fit(view, Embeds(self._md, self._text, self._head(view)), self._ctx.max_parts)
        chart = notification.extras.chart
        if chart and messages:
            # Uploaded with the first post and shown as the first embed's image; an edit keeps the upload.
            messages[0].files = {CHART_FILE: chart}
            messages[0].body["embeds"][0]["image"] = {"url": f"attachment://{CHART_FILE}"}
        return messages

    def violations(self, message: Message) -> list[str]:
        return limits.violations(message.body)

    async def send(self, message: Message) -> Result:
        if message.ref and self._settings.update_in_place:
            result = await self._request("PATCH", self._edit_url(message.ref), self._edit_body(message.body), None)
            if result.reason != "http_404_10008":  # Unknown Message: deleted by someone; post it anew
                return dataclasses.replace(result, ref=message.ref) if result.outcome is Outcome.DELIVERED else result
        return await self._request("POST", self._url, message.body, message.files)

    def _edit_url(self, ref: str) -> URL:
        # PATCH /webhooks/{id}/{token}/messages/{message_id}, keeping thread_id (a message in a thread).
        base = URL(self._settings.webhook_url)
        query = {k: v for k, v in base.query.items() if k == "thread_id"}
        return base.with_path(f"{base.path.rstrip('/')}/messages/{ref}").with_query(query)

    @staticmethod
    def _edit_body(body: dict[str, Any]) -> dict[str, Any]:
        # An edit replaces what it names: an empty `content` clears the first post's mentions once resolved;
        # `username` cannot be edited.
        edit = {"content": "", **{k: v for k, v in body.items() if k != "username"}}
        # The chart was uploaded with the first post; an edit names no file, so it cannot show one in an embed.
        edit["embeds"] = [{k: v for k, v in e.items() if k != "image"} for e in edit.get("embeds", [])]
        return edit

    async def _request(self, method: str, url: URL, body: dict[str, Any], files: dict[str, bytes] | None) -> Result:
        data: Any = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if files:
            # multipart: the JSON body as payload_json and each file as files[n] (embeds show attachment://name).
            form = aiohttp.FormData()
            form.add_field("payload_json", data.decode(), content_type="application/json")
            for i, (name, content) in enumerate(files.items()):
                form.add_field(f"files[{i}]", content, filename=name, content_type="image/png")
            data, headers = form, {}
        answer = await exchange(self._http.get(), method, url, data=data, headers=headers)
        if isinstance(answer, Result):
            return answer
        decoded: Any = None
        if answer.body:
            try:
                decoded = json.loads(answer.body)
            except ValueError:
                decoded = None
        retry_after, code = None, ""
        if answer.status >= 400 and isinstance(decoded, dict):
            if isinstance(decoded.get("retry_after"), int | float):
                retry_after = float(decoded["retry_after"])
            if isinstance(decoded.get("code"), int):
                code = str(decoded["code"])
        result = classify(answer.status, answer.headers, code=code, retry_after=retry_after)
        ref = decoded.get("id") if isinstance(decoded, dict) else None
        if result.outcome is Outcome.DELIVERED and self._settings.update_in_place and _snowflake(ref):
            result = dataclasses.replace(result, ref=ref)
        return result

    async def close(self) -> None:
        await self._http.close()


def _snowflake(value: Any) -> bool:
    # Only a plain numeric id goes into a URL path later.
    return isinstance(value, str) and value.isdigit() and len(value) <= 25
