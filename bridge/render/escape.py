"""What every channel's escaping shares: one-line text for titles, and links made safe to embed in any markup.

Each channel escapes alert text its own way (in its folder); these are the parts common to all of them.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

__all__ = ["Url", "one_line", "safe_url"]


class Url(str):
    """A link target we built or sanitised ourselves: templates may print it without escaping."""


# Control characters, and the Unicode line separators some clients honour as line breaks.
_LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")

# Characters kept as they are in a link target; everything else is percent-encoded, so that a URL can
# never close the markup around it (Slack `<url|text>`, Discord `[text](url)`, an HTML attribute).
_URL_SAFE = ":/?#&=%+,;@!$*~.-_"


def one_line(text: str) -> str:
    """Text for a subject or title: no CR, LF or other control characters (header injection)."""
    return _LINE_BREAKS.sub(" ", text).strip()


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
