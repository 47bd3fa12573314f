"""The four proxy families out of exposition bytes by line prefix, a cheap validity check, label parsing."""

from __future__ import annotations

import functools
import re

__all__ = [
    "FAILED",
    "FAMILIES",
    "LATENCY_BUCKET",
    "REQUESTS",
    "TOKENS",
    "find_prefixes",
    "invalid_line",
    "parse_labels",
    "scan",
]

REQUESTS = b"llm_requests_total"
FAILED = b"llm_requests_failed_total"
TOKENS = b"llm_tokens_used_total"
LATENCY_BUCKET = b"llm_response_latency_seconds_bucket"
FAMILIES = (REQUESTS, FAILED, TOKENS, LATENCY_BUCKET)

# Starts with a literal "\nllm_", so the regex engine skims the buffer for that prefix in C and only
# looks closer at candidate lines. `\{[^\n]*\}` runs to the line end and backs off to the last brace,
# so a `}` inside a quoted label value cannot cut the label set short.
_SAMPLE = re.compile(
    rb"\n(llm_(?:requests_total|requests_failed_total|tokens_used_total|response_latency_seconds_bucket)"
    rb"(?:\{[^\n]*\})?)[ \t]+([^ \t\n]+)"
)
# A line that is neither blank, a comment, nor `name{labels} number`: the body is not an exposition.
_BAD_LINE = re.compile(
    rb"\n(?!\n|#|[a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^\n]*\})?[ \t]+[-+]?(?:[0-9]|\.[0-9]|[Ii]nf|NaN|nan))(?=.)",
    re.DOTALL,
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")


def scan(body: bytes) -> list[tuple[bytes, bytes]]:
    """(series, value) of every sample of the four families; series is the name with its label set."""
    found = _SAMPLE.findall(body)
    if body.startswith(b"llm_"):
        end = body.find(b"\n")
        first = _SAMPLE.match(b"\n" + (body if end < 0 else body[:end]))
        if first:
            found.insert(0, first.groups())
    return found


def invalid_line(body: bytes) -> int | None:
    """Line number (1-based) of the first line that cannot be exposition text, or None if all can."""
    end = body.find(b"\n")
    if _BAD_LINE.match(b"\n" + (body if end < 0 else body[:end])):
        return 1
    # The other lines follow a newline of the body itself: no copy of a body of tens of MB to prepend one.
    m = _BAD_LINE.search(body)
    if m is None:
        return None
    return body.count(b"\n", 0, m.start()) + 2


@functools.lru_cache(maxsize=8)
def _any_of(prefixes: tuple[bytes, ...]) -> tuple[re.Pattern[bytes], re.Pattern[bytes]]:
    names = b"|".join(re.escape(p) for p in prefixes)
    # Anywhere (the fastest search when, as usual, none is there), then at a line start only (a sample, or a
    # HELP/TYPE line): `litellm_request_total_latency_metric` holds `llm_request_` in its middle.
    return re.compile(names), re.compile(rb"\n(?:# (?:HELP|TYPE) )?(?:" + names + rb")")


def find_prefixes(body: bytes, prefixes: tuple[bytes, ...]) -> bool:
    """True if a line of `body` (a sample, or a HELP/TYPE line) starts with a name that has one of the prefixes:
    a cheap pre-check before a line-level look. One regex pass over the body, not one `find` per prefix."""
    anywhere, at_line_start = _any_of(prefixes)
    if anywhere.search(body) is None:
        return False
    return at_line_start.match(b"\n" + body[:4096]) is not None or at_line_start.search(body) is not None


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def parse_labels(series: bytes) -> dict[str, str]:
    """Labels of a series like b'name{a="x",b="y"}' (values unescaped)."""
    start = series.find(b"{")
    if start < 0:
        return {}
    text = series[start + 1 : series.rfind(b"}")].decode("utf-8", "replace")
    return {k: _unescape(v) for k, v in _LABEL.findall(text)}
