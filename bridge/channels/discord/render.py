"""Discord rendering: one embed per alert in full, or one embed of lines when collapsed; coloured by state."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.channels.discord import limits
from bridge.channels.discord.escape import escape
from bridge.render.context import AlertView, GroupView
from bridge.render.engine import Templates
from bridge.render.fit import AlertLines, Renderer, cap_alert, truncate

__all__ = ["Embeds", "markdown_templates", "text_templates"]

DETAIL_SUMMARY = 300
DETAIL_DESCRIPTION = 1500
LINE_SUMMARY = 150
LINE_MAX = 600

_TEMPLATES = Path(__file__).parent / "templates"


def markdown_templates(override_dir: Path | None) -> Templates:
    """Discord's templates for markdown fields (titles, descriptions), every output escaped."""
    return Templates(_TEMPLATES, override_dir, escaper=escape)


def text_templates(override_dir: Path | None) -> Templates:
    """Discord's templates for plain-text fields (the footer): no markdown there to escape."""
    return Templates(_TEMPLATES, override_dir)


class Embeds(Renderer):
    """Builds execute-webhook bodies: one embed per alert in full; one embed of lines when collapsed."""

    def __init__(self, md: Templates, text: Templates, head: dict[str, Any]) -> None:
        self.md = md  # Discord markdown, escaped
        self.text = text  # plain text (footer): no markdown there to escape
        self.head = head  # content, allowed_mentions, username
        self._line = AlertLines(self.md, "discord.line.j2", LINE_SUMMARY, LINE_MAX)

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
        return limits.violations(body)
