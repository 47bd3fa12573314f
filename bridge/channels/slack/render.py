"""Slack rendering: the view as Block Kit (a header, a context line, sections), coloured by severity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.channels.slack import limits
from bridge.channels.slack.escape import escape
from bridge.render.context import AlertView, GroupView
from bridge.render.engine import Templates
from bridge.render.fit import AlertLines, Renderer, cap_alert, measure, truncate

__all__ = ["Blocks", "templates"]

# Budgets inside the platform limits, so that one long annotation cannot crowd out the links.
DETAIL_SUMMARY = 300
DETAIL_DESCRIPTION = 1500
LINE_SUMMARY = 150
LINE_MAX = 700
FALLBACK_MAX = 3000

_TEMPLATES = Path(__file__).parent / "templates"


def templates(override_dir: Path | None) -> Templates:
    """Slack's templates (`slack.*.j2`), every output escaped for mrkdwn."""
    return Templates(_TEMPLATES, override_dir, escaper=escape)


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


class Blocks(Renderer):
    """Builds Slack bodies: a header, a context line, sections; coloured by severity through an attachment."""

    def __init__(self, templates: Templates, mentions: str) -> None:
        self.t = templates
        self.mentions = mentions
        self._line = AlertLines(self.t, "slack.line.j2", LINE_SUMMARY, LINE_MAX)

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

    def page(self, view: GroupView, alerts: list[AlertView], part: int, parts: int, more: int) -> Any:
        blocks = self._head(view, part, parts)
        chunk = ""
        for a in alerts:
            line = self._line(view, a)
            if chunk and measure(chunk) + 1 + measure(line) > limits.SLACK_MAX_SECTION_TEXT:
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
        return limits.violations(body)
