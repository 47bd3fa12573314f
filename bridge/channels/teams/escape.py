"""Teams escaping: alert text in a card can never become markdown, a link, a mention tag or a date function."""

from __future__ import annotations

import re

__all__ = ["escape"]

# Markdown anywhere in a line (Adaptive Cards render a CommonMark subset in TextBlocks and facts): emphasis,
# strike, code, links. A backslash before ASCII punctuation is hidden by CommonMark.
_INLINE = re.compile(r"([\\`*_~\[\]()])")
# Markers that count only at the start of a line: headings, quotes, bullets (and `---`, `+`), ordered lists.
# For an ordered list the backslash goes before the dot, so `10.30.1.162` stays as it is.
_LINE_START = re.compile(r"^([ \t]*)([#>+-])", re.MULTILINE)
_ORDERED = re.compile(r"^([ \t]*\d+)\.(?=\s)", re.MULTILINE)
_BREAKS = re.compile(r"\r\n?|\n")
_ZWSP = "\u200b"
_BRACES = re.compile(r"\{(?=\{)")  # every brace followed by another, so `{{{` is broken up too


def escape(text: str) -> str:
    """Card markdown escaped, line breaks kept, `<at>` tags and `{{DATE(…)}}` functions made inert.

    A zero-width space after `<` keeps `<at>…</at>` (a Teams mention tag) and `<http://…>` (an autolink)
    as text, and one between `{{` keeps the card's date/time functions from being evaluated; both are
    invisible, so the text reads as it was written.
    """
    text = _INLINE.sub(r"\\\1", text)
    # A single newline is a soft break in markdown (the lines would run together): a blank line keeps them apart.
    text = _BREAKS.sub("\n\n", text)
    text = _LINE_START.sub(r"\1\\\2", text)
    text = _ORDERED.sub(r"\1\\.", text)
    return _BRACES.sub("{" + _ZWSP, text.replace("<", "<" + _ZWSP))
