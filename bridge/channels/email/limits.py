"""Email limits (Gmail's clipping, subject length) and a check that lists what a message breaks."""

from __future__ import annotations

from typing import Any

from bridge.render.fit import measure

__all__ = ["EMAIL_MAX_HTML_BYTES", "EMAIL_MAX_SUBJECT", "violations"]

# Gmail clips an HTML body above about 102 KB (the rest hidden behind "View entire message"); RFC 5322
# recommends header lines under 78 characters, folded by the email package, so the subject cap is generous.
EMAIL_MAX_HTML_BYTES = 100_000
EMAIL_MAX_SUBJECT = 250


def violations(body: Any) -> list[str]:
    """What would break or clip an email: CR/LF in the subject, a missing part, an HTML part Gmail clips."""
    if not isinstance(body, dict):
        return ["body is not an email description"]
    problems: list[str] = []
    subject = body.get("subject") or ""
    if any(c in subject for c in "\r\n"):
        problems.append("subject holds CR or LF")
    if measure(subject) > EMAIL_MAX_SUBJECT:
        problems.append(f"subject {measure(subject)} > {EMAIL_MAX_SUBJECT}")
    if not body.get("text") or not body.get("html"):
        problems.append("needs both a text and an HTML part")
    html_bytes = len((body.get("html") or "").encode())
    if html_bytes > EMAIL_MAX_HTML_BYTES:
        problems.append(f"HTML part {html_bytes} bytes > {EMAIL_MAX_HTML_BYTES}")
    return problems
