"""Scale every duration in Prometheus and Alertmanager configuration text by one factor.

The surge alerts compare with an hour earlier and every alert waits its `for:`; the demo and the
end-to-end test compress time instead of waiting. `scale_durations(text, factor)` rewrites the
durations in the files of `deploy/` and nothing else, so those files stay the single source of truth:

- PromQL range and subquery selectors (`[5m]`, `[1h:30s]`) and `offset 1h`;
- YAML keys that hold a duration (`for`, `interval`, `scrape_interval`, `group_wait`, ...).

A factor of 1/60 turns an hour into a minute; run the simulator at speed 60 to match (one scenario minute
per real second), so rates per real second grow by the same factor and rate-based guards still hold.
"""

from __future__ import annotations

import re
from fractions import Fraction

from common import durations as common_durations

__all__ = ["DURATION_KEYS", "format_duration", "parse_duration", "scale_durations"]

_UNITS_MS = {
    "y": 365 * 86_400_000,
    "w": 7 * 86_400_000,
    "d": 86_400_000,
    "h": 3_600_000,
    "m": 60_000,
    "s": 1000,
    "ms": 1,
}
_DURATION = r"(?:\d+(?:ms|[smhdwy]))+"

# Keys whose value is a duration, in Prometheus's and Alertmanager's configuration files.
DURATION_KEYS = (
    "for",
    "keep_firing_for",
    "interval",
    "scrape_interval",
    "scrape_timeout",
    "evaluation_interval",
    "group_wait",
    "group_interval",
    "repeat_interval",
    "resolve_timeout",
)

_KEY_RE = re.compile(rf"^(\s*-?\s*(?:{'|'.join(DURATION_KEYS)}):\s*)([\"']?)({_DURATION})\2(\s*(?:#.*)?)$", re.M)
_RANGE_RE = re.compile(rf"\[({_DURATION})(?::({_DURATION})?)?\]")
_OFFSET_RE = re.compile(rf"(\boffset\s+-?)({_DURATION})\b")


def parse_duration(text: str) -> int:
    """A Prometheus duration such as `1h30m` in milliseconds (ValueError otherwise)."""
    if not re.fullmatch(_DURATION, text):  # unit form only: a config file never holds a bare number here
        raise ValueError(f"not a duration: {text!r}")
    return round(common_durations.parse_duration(text, "duration") * 1000)


def format_duration(ms: int) -> str:
    """Milliseconds as the shortest Prometheus duration (`90000` → `1m30s`); at least 1ms."""
    ms = max(int(ms), 1)
    out = []
    for unit in ("d", "h", "m", "s", "ms"):  # y and w are not exact multiples in Alertmanager's parser
        n, ms = divmod(ms, _UNITS_MS[unit])
        if n:
            out.append(f"{n}{unit}")
    return "".join(out)


def _scale(text: str, factor: Fraction) -> str:
    return format_duration(round(parse_duration(text) * factor))


def scale_durations(text: str, factor: float | Fraction) -> str:
    """`text` with every duration multiplied by `factor`; everything else unchanged, byte for byte."""
    factor = Fraction(factor).limit_denominator(1_000_000)
    if factor <= 0:
        raise ValueError("time-scale factor must be positive")

    def key(m: re.Match) -> str:
        return f"{m[1]}{m[2]}{_scale(m[3], factor)}{m[2]}{m[4]}"

    def rng(m: re.Match) -> str:
        if m[0].count(":"):
            step = _scale(m[2], factor) if m[2] else ""
            return f"[{_scale(m[1], factor)}:{step}]"
        return f"[{_scale(m[1], factor)}]"

    text = _KEY_RE.sub(key, text)
    text = _RANGE_RE.sub(rng, text)
    return _OFFSET_RE.sub(lambda m: f"{m[1]}{_scale(m[2], factor)}", text)
