"""Email rendering: subject, text and autoescaped HTML parts; every alert in detail, or a line each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bridge.channels.email import limits
from bridge.render.context import AlertView, GroupView
from bridge.render.engine import Templates
from bridge.render.escape import one_line
from bridge.render.fit import Renderer, cap_alert, truncate

__all__ = ["CHART_CID", "Mail", "html_templates", "text_templates"]

CHART_CID = "alert-chart@alert-bridge"  # the inline chart's Content-ID, as the HTML part refers to it

MAX_DETAILED_ALERTS = 50  # past this, one line per alert reads better than pages of detail
DETAIL_SUMMARY = 500
DETAIL_DESCRIPTION = 4000
LINE_SUMMARY = 200

_TEMPLATES = Path(__file__).parent / "templates"


def text_templates(override_dir: Path | None) -> Templates:
    """The subject and the text part: plain text, nothing to escape."""
    return Templates(_TEMPLATES, override_dir)


def html_templates(override_dir: Path | None) -> Templates:
    """The HTML part, autoescaped."""
    return Templates(_TEMPLATES, override_dir, html=True)


class Mail(Renderer):
    def __init__(self, text: Templates, html: Templates) -> None:
        self.text = text
        self.html = html

    def _body(
        self, view: GroupView, alerts: list[AlertView], collapsed: bool, part: int, parts: int, more: int
    ) -> dict:
        variables = dict(
            group=view, alerts=alerts, collapsed=collapsed, part=part, parts=parts, more=more, chart_cid=CHART_CID
        )
        subject = one_line(self.text.render("email.subject.j2", **variables))
        return {
            "subject": truncate(subject, limits.EMAIL_MAX_SUBJECT)[0],
            "text": self.text.render("email.txt.j2", **variables),
            "html": self.html.render("email.html.j2", **variables),
        }

    def full(self, view: GroupView, alerts: list[AlertView], more: int) -> tuple[Any, bool] | None:
        if len(alerts) > MAX_DETAILED_ALERTS:
            return None
        capped = [cap_alert(a, DETAIL_SUMMARY, DETAIL_DESCRIPTION) for a in alerts]
        body = self._body(view, [a for a, _ in capped], False, 1, 1, more)
        return body, any(cut for _, cut in capped)

    def page(self, view: GroupView, alerts: list[AlertView], part: int, parts: int, more: int) -> Any:
        lines = [cap_alert(a, LINE_SUMMARY, 0)[0] for a in alerts]
        return self._body(view, lines, True, part, parts, more)

    def minimal(self, view: GroupView, more: int) -> Any:
        return self._body(view, [], True, 1, 1, more)

    def check(self, body: Any) -> list[str]:
        return limits.violations(body)
