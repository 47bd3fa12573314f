"""Teams channel: an Adaptive Card POSTed to a Workflows webhook, which answers 202 with an empty body."""

from __future__ import annotations

import json

from yarl import URL

from bridge.channels.http import SessionSource, classify, exchange, lane_key, redact_url
from bridge.channels.teams import limits
from bridge.channels.teams.render import Cards, templates
from bridge.channels.teams.settings import TeamsSettings
from bridge.model import ChannelContext, Message, Notification, Pace, Result
from bridge.render.context import build_view
from bridge.render.fit import fit

__all__ = ["TEAMS_PACE", "TeamsChannel"]

# Teams docs (connectors-using, rate limiting): more than 4 requests in 1 s, or 60 in 30 s, to one webhook is
# answered 429. Bursts of 4, one burst per 2.1 s: never more than 4 in a second, nor 15 × 4 = 60 in 30 s.
TEAMS_PACE = Pace(messages=4, per_seconds=2.1)
_RATE = TEAMS_PACE.messages / TEAMS_PACE.per_seconds


def _error_code(raw: bytes) -> str:
    """The Workflows error word (`{"error": {"code": "TriggerInputSchemaMismatch"}}`), lowercased; else ""."""
    try:
        answer = json.loads(raw)
    except ValueError:
        return ""
    error = answer.get("error") if isinstance(answer, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code.lower() if isinstance(code, str) and code.isalnum() else ""


class TeamsChannel:
    type = "teams"

    def __init__(self, name: str, settings: TeamsSettings, ctx: ChannelContext) -> None:
        self.name = name
        self.lane = lane_key("teams", settings.webhook_url)
        # The `rate` option may only slow the lane down: a faster one would collect 429s.
        configured = Pace.from_rate(settings.rate)
        slower = configured is not None and configured.messages / configured.per_seconds < _RATE
        self.pace = configured if slower else TEAMS_PACE
        self._secret_url = settings.webhook_url
        # Sent exactly as configured: re-quoting the query would break its signature (`sp=%2Ftriggers…&sig=…`).
        self._url = URL(settings.webhook_url, encoded=True)
        self._ctx = ctx
        self._templates = templates(ctx.templates_dir)
        self._http = SessionSource(ctx.session)

    def describe(self) -> str:
        return redact_url(self._secret_url)

    def render(self, notification: Notification) -> list[Message]:
        view = build_view(notification, self._ctx)
        messages = fit(view, Cards(self._templates), self._ctx.max_parts)
        if view.chart_url and messages:
            # Teams fetches the image from the bridge itself (BRIDGE_PUBLIC_URL/charts/<id>.png).
            card = messages[0].body["attachments"][0]["content"]
            image = {"type": "Image", "url": str(view.chart_url), "altText": f"{view.title}: the last hour"}
            card["body"].append({**image, "size": "stretch"})
            if self.violations(messages[0]):
                card["body"].pop()  # no room: the message matters more than its picture
        return messages

    def violations(self, message: Message) -> list[str]:
        return limits.violations(message.body)

    async def send(self, message: Message) -> Result:
        headers = {"Content-Type": "application/json; charset=utf-8"}
        answer = await exchange(
            self._http.get(), "POST", self._url, data=limits.serialise(message.body), headers=headers
        )
        if isinstance(answer, Result):
            return answer
        code = _error_code(answer.body) if answer.status >= 400 else ""
        return classify(answer.status, answer.headers, code=code)

    async def close(self) -> None:
        await self._http.close()
