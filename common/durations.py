"""PLACEHOLDER until the common branch lands."""

from __future__ import annotations

import re

from common.errors import ConfigError

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, name: str) -> float:
    value = text.strip().lower()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ConfigError(f"{name}: not a duration: {text!r}")
    return sum(float(n) * _UNIT[u] for n, u in parts)
