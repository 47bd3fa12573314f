"""Discord escaping: alert text can never become markdown, a mention or a link, and reads as it was written."""

from __future__ import annotations

import re

__all__ = ["escape"]

# Characters that are markdown anywhere in a line; a backslash before them is hidden by Discord.
_INLINE = re.compile(r"([\\*_~`|\[\]()<>])")
# Markers that count only at the start of a line, and only when followed by a space (as Discord's parser
# reads them): headings `#`–`###` and subtext `-#`, quotes `>`/`>>>`, bullets `-`/`+`, ordered lists `1.`.
# `>` is already escaped inline. For an ordered list the backslash goes before the dot, where it is hidden:
# `10.30.1.162` (no space after the dot) is not a list item and is left alone.
_LINE_START = re.compile(r"^(\s*)(#{1,3}|-#|[-+])(?=\s)", re.MULTILINE)
_ORDERED = re.compile(r"^(\s*\d+)\.(?=\s)", re.MULTILINE)


def escape(text: str) -> str:
    """Discord markdown escaped; a zero-width space after `@` so `@everyone`, `@here`, `<@id>`, `<@&id>` stay text."""
    text = _INLINE.sub(r"\\\1", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    text = _ORDERED.sub(r"\1\\.", text)
    return text.replace("@", "@\u200b")
