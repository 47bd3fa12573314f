"""Escaping so that alert text can never become a mention, a link or markup on any platform."""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

__all__ = ["Url", "discord", "one_line", "safe_url", "slack", "terminal"]


class Url(str):
    """A link target we built or sanitised ourselves: templates may print it without escaping."""


# Control characters, and the Unicode line separators some clients honour as line breaks.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")

_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# Discord markdown: these characters are special anywhere in a line ...
_DISCORD_INLINE = re.compile(r"([\\*_~`|\[\]()<>])")
# ... and these only at the start of a line (headings, lists, quotes, subtext).
_DISCORD_LINE_START = re.compile(r"^(\s*)([#>\-+]|\d+\.)", re.MULTILINE)

# Characters kept as they are in a link target; everything else is percent-encoded, so that a URL can
# never close the markup around it (Slack `<url|text>`, Discord `[text](url)`, an HTML attribute).
_URL_SAFE = ":/?#&=%+,;@!$*~.-_"


def one_line(text: str) -> str:
    """Text for a subject or title: no CR, LF or other control characters (header injection)."""
    return _LINE_BREAKS.sub(" ", text).strip()


def terminal(text: str) -> str:
    """Text for a terminal: control characters (ANSI escapes, carriage returns) out, newlines and tabs kept."""
    return _TERMINAL_CONTROL.sub("", text)


def slack(text: str) -> str:
    """Slack mrkdwn/plain text: `&`, `<`, `>` escaped, which makes `<!channel>`, `<!here>`, `<@U…>` and links inert."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def discord(text: str) -> str:
    """Discord markdown escaped; a zero-width space after `@` so `@everyone`, `@here`, `<@id>`, `<@&id>` stay text."""
    text = _DISCORD_INLINE.sub(r"\\\1", text)
    text = _DISCORD_LINE_START.sub(r"\1\\\2", text)
    return text.replace("@", "@\u200b")


def safe_url(url: str | None) -> Url | None:
    """An http(s) URL made safe to embed in any markup, or None for anything else (javascript:, relative…)."""
    if not url:
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return Url(quote(url, safe=_URL_SAFE))
