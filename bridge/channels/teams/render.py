"""Teams rendering: the view as an Adaptive Card, a coloured title, one container per alert with facts and links."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.channels.teams import limits
from bridge.channels.teams.escape import escape
from bridge.render.context import AlertView, GroupView
from bridge.render.engine import Templates
from bridge.render.escape import Url, one_line
from bridge.render.fit import AlertLines, Renderer, cap_alert, truncate

__all__ = ["Cards", "templates"]

# Budgets (characters) so that one long annotation or label cannot crowd out the rest of the card.
DETAIL_SUMMARY = 300
DETAIL_DESCRIPTION = 1000
FACT_VALUE = 300
TITLE_MAX = 200
CONTEXT_MAX = 500
LINE_SUMMARY = 150
LINE_MAX = 600
# More alerts than this in detail would be a wall of containers: collapse to one line per alert instead.
FULL_MAX_ALERTS = 10

# Adaptive Cards 1.4 name container styles and text colours alike; by severity, and "good" (green) when resolved.
_SEVERITY_STYLES = {"critical": "attention", "warning": "warning", "info": "accent"}

_TEMPLATES = Path(__file__).parent / "templates"


def templates(override_dir: Path | None) -> Templates:
    """Teams' templates (`teams.*.j2`), every output escaped for card markdown."""
    return Templates(_TEMPLATES, override_dir, escaper=escape)


def _style(status: str, severity: str) -> str:
    return "good" if status == "resolved" else _SEVERITY_STYLES.get(severity, "emphasis")


def _colour(status: str, severity: str) -> str:
    return "good" if status == "resolved" else _SEVERITY_STYLES.get(severity, "default")


def _text(text: str, **props: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def _open(title: str, url: Url | None) -> list[dict[str, Any]]:
    """An Action.OpenUrl for a link of the view (already a safe http(s) URL), or nothing."""
    return [{"type": "Action.OpenUrl", "title": title, "url": str(url)}] if url else []


def _fact(title: str, value: str) -> dict[str, str]:
    return {"title": escape(title), "value": escape(truncate(one_line(value), FACT_VALUE)[0])}


class Cards(Renderer):
    """Builds Workflows webhook bodies: one Adaptive Card per message, in full or one line per alert."""

    def __init__(self, templates: Templates) -> None:
        self.t = templates
        self._line = AlertLines(self.t, "teams.line.j2", LINE_SUMMARY, LINE_MAX)

    def _message(self, view: GroupView, body: list[dict[str, Any]]) -> dict[str, Any]:
        card: dict[str, Any] = {
            "type": "AdaptiveCard",
            "$schema": limits.ADAPTIVE_CARD_SCHEMA,
            "version": limits.ADAPTIVE_CARD_VERSION,
            "msteams": {"width": "Full"},
            "body": body,
        }
        actions = _open("Alertmanager group", view.group_url)
        if actions:
            card["actions"] = actions
        attachment = {"contentType": limits.ADAPTIVE_CARD_CONTENT_TYPE, "content": card}
        return {"type": "message", "attachments": [attachment]}

    def _head(self, view: GroupView, part: int, parts: int) -> dict[str, Any]:
        title = truncate(self.t.render("teams.title.j2", group=view, part=part, parts=parts).strip(), TITLE_MAX)[0]
        context = truncate(self.t.render("teams.context.j2", group=view).strip(), CONTEXT_MAX)[0]
        items = [_text(title or view.STATUS, size="large", weight="bolder")]
        if context:
            items.append(_text(context, isSubtle=True, spacing="none"))
        return {"type": "Container", "style": _style(view.status, view.severity), "bleed": True, "items": items}

    def _more(self, view: GroupView, more: int) -> list[dict[str, Any]]:
        if not more:
            return []
        return [_text(self.t.render("teams.more.j2", group=view, more=more).strip(), separator=True)]

    def _alert(self, view: GroupView, a: AlertView) -> tuple[dict[str, Any], bool]:
        a, cut = cap_alert(a, DETAIL_SUMMARY, DETAIL_DESCRIPTION)
        heading = truncate(self.t.render("teams.alert_title.j2", a=a, group=view).strip(), TITLE_MAX)[0]
        items = [_text(heading or a.STATUS, weight="bolder", color=_colour(a.status, a.severity))]
        if a.summary:
            items.append(_text(escape(a.summary), weight="bolder", spacing="small"))
        if a.description:
            items.append(_text(escape(a.description), spacing="small"))
        facts = [_fact("severity", a.severity)] + [_fact(k, v) for k, v in a.labels.items()]
        facts.append(_fact("started", a.started))
        if a.ended:
            facts.append(_fact("ended", a.ended))
        if a.duration:
            facts.append(_fact("duration", a.duration))
        if a.fired:
            facts.append(_fact("fired in 24 h", f"{a.fired}×"))
        if a.runbook_text:  # a relative runbook_url with no base to join: shown, not linked
            facts.append(_fact("runbook", a.runbook_text))
        items.append({"type": "FactSet", "facts": facts})
        links = _open("Runbook", a.runbook_url) + _open("Dashboard", a.dashboard_url)
        if a.status == "firing":
            links += _open("Silence", a.silence_url)
        links += _open("Source", a.source_url)
        if links:
            items.append({"type": "ActionSet", "actions": links})
        return {"type": "Container", "separator": True, "spacing": "medium", "items": items}, cut

    def full(self, view: GroupView, alerts: list[AlertView], more: int) -> tuple[Any, bool] | None:
        if len(alerts) > FULL_MAX_ALERTS:
            return None
        body, cut = [self._head(view, 1, 1)], False
        for a in alerts:
            container, cut_a = self._alert(view, a)
            body.append(container)
            cut = cut or cut_a
        return self._message(view, body + self._more(view, more)), cut

    def page(self, view: GroupView, alerts: list[AlertView], part: int, parts: int, more: int) -> Any:
        lines = [_text(self._line(view, a), spacing="small") for a in alerts]
        return self._message(view, [self._head(view, part, parts), *lines, *self._more(view, more)])

    def minimal(self, view: GroupView, more: int) -> Any:
        return self._message(view, [self._head(view, 1, 1), *self._more(view, more)])

    def check(self, body: Any) -> list[str]:
        return limits.violations(body)
