"""Discord channel: embeds coloured by severity, mentions only in `content` and only for configured ids."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from yarl import URL

from bridge.channels.base import ChannelContext, Message, Outcome, Pace, Result
from bridge.channels.http import SessionSource, classify, lane_key, redact_url
from bridge.channels.settings import DiscordSettings
from bridge.payload import Notification
from bridge.render import limits
from bridge.render.context import AlertView, GroupView, build_view
from bridge.render.engine import Templates
from bridge.render.fit import Renderer, cap_alert, fit, truncate

__all__ = ["DISCORD_PACE", "DiscordChannel"]

# Discord API docs, rate limits: about 5 requests per 2 s per webhook (the headers, when given, take over).
DISCORD_PACE = Pace(messages=5, per_seconds=2.0)
TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)
DETAIL_SUMMARY = 300
DETAIL_DESCRIPTION = 1500
LINE_SUMMARY = 150
LINE_MAX = 600


class _Embeds(Renderer):
    """Builds execute-webhook bodies: one embed per alert in full; one embed of lines when collapsed."""

    def __init__(self, md: Templates, text: Templates, head: dict[str, Any]) -> None:
        self.md = md  # Discord markdown, escaped
        self.text = text  # plain text (footer): no markdown there to escape
        self.head = head  # content, allowed_mentions, username
        self._lines: dict[int, str] = {}

    def _footer(self, view: GroupView) -> dict[str, str]:
        text = self.text.render("discord.footer.j2", group=view).strip()
        return {"text": truncate(text, limits.DISCORD_MAX_FOOTER)[0] or view.STATUS}

    def _more(self, view: GroupView, more: int) -> str:
        return self.md.render("discord.more.j2", group=view, more=more).strip() if more else ""

    def _body(self, embeds: list[dict]) -> dict:
        return {**self.head, "embeds": embeds}

    def full(self, view: GroupView, alerts: list[AlertView], more: int) -> tuple[Any, bool] | None:
        if len(alerts) + (1 if more else 0) > limits.DISCORD_MAX_EMBEDS:
            return None
        embeds, cut = [], False
        for a in alerts:
            a, cut_a = cap_alert(a, DETAIL_SUMMARY, DETAIL_DESCRIPTION)
            title, cut_t = truncate(self.md.render("discord.title.j2", a=a, group=view).strip(), 256)
            text, cut_d = truncate(self.md.render("discord.alert.j2", a=a, group=view).strip(), 4096)
            cut = cut or cut_a or cut_t or cut_d
            embeds.append({"title": title, "description": text, "color": a.colour})
        if more:
            embeds.append({"description": self._more(view, more), "color": view.colour})
        embeds[-1]["footer"] = self._footer(view)
        return self._body(embeds), cut

    def _line(self, view: GroupView, a: AlertView) -> str:
        key = id(a)
        if key not in self._lines:
            capped, _ = cap_alert(a, LINE_SUMMARY, 0)
            self._lines[key] = truncate(self.md.render("discord.line.j2", a=capped, group=view).strip(), LINE_MAX)[0]
        return self._lines[key]

    def page(self, view: GroupView, alerts: list[AlertView], part: int, parts: int, more: int) -> Any:
        title = self.md.render("discord.group_title.j2", group=view, part=part, parts=parts).strip()
        lines = [self._line(view, a) for a in alerts]
        if more:
            lines.append(self._more(view, more))
        embed = {
            "title": truncate(title, limits.DISCORD_MAX_TITLE)[0],
            "description": "\n".join(lines),
            "color": view.colour,
            "footer": self._footer(view),
        }
        return self._body([embed])

    def minimal(self, view: GroupView, more: int) -> Any:
        body = self.page(view, [], 1, 1, more)
        body["embeds"][0]["description"] = truncate(body["embeds"][0]["description"], 4096)[0] or view.STATUS
        return body

    def check(self, body: Any) -> list[str]:
        return limits.discord_violations(body)


class DiscordChannel:
    type = "discord"

    def __init__(self, name: str, settings: DiscordSettings, ctx: ChannelContext) -> None:
        self.name = name
        self.lane = lane_key("discord", settings.webhook_url)
        self.pace = DISCORD_PACE
        self.send_resolved = settings.send_resolved
        self._url = URL(settings.webhook_url).update_query(wait="true")  # 200 with the message, not a blind 204
        self._settings = settings
        self._ctx = ctx
        self._md = Templates("discord", ctx.templates_dir)
        self._text = Templates("text", ctx.templates_dir)
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
        return fit(view, _Embeds(self._md, self._text, self._head(view)), self._ctx.max_parts)

    async def send(self, message: Message) -> Result:
        data = json.dumps(message.body).encode()
        headers = {"Content-Type": "application/json"}
        try:
            async with self._http.get().post(
                self._url, data=data, headers=headers, timeout=TIMEOUT, allow_redirects=False
            ) as resp:
                raw = await resp.read()
                retry_after, code = None, ""
                if resp.status >= 400:
                    try:
                        answer = json.loads(raw)
                    except ValueError:
                        answer = None
                    if isinstance(answer, dict):
                        if isinstance(answer.get("retry_after"), int | float):
                            retry_after = float(answer["retry_after"])
                        if isinstance(answer.get("code"), int):
                            code = str(answer["code"])
                return classify(resp.status, resp.headers, code=code, retry_after=retry_after)
        except TimeoutError:
            return Result(Outcome.RETRY, "timeout")
        except aiohttp.ClientError:
            return Result(Outcome.RETRY, "connection_error")

    async def close(self) -> None:
        await self._http.close()
