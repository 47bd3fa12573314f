"""Durations as Prometheus writes them (`1h30m`, `250ms`), or a bare number of seconds."""

from __future__ import annotations

import re

from common.errors import ConfigError

__all__ = ["parse_duration"]

# Prometheus' model.ParseDuration: each unit at most once, largest first, whole numbers only.
_UNITS = (("y", 365 * 86400.0), ("w", 7 * 86400.0), ("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0))
_PROMETHEUS = re.compile("".join(rf"(?:(\d+){u})?" for u, _ in _UNITS) + r"(?:(\d+)ms)?")
_SECONDS = re.compile(r"\d+(?:\.\d+)?|\.\d+")


def parse_duration(text: str, name: str) -> float:
    """`1h30m`, `250ms`, `2s500ms` (units y w d h m s ms) or a bare non-negative number of seconds → seconds.

    Raises ConfigError naming `name` for anything else (`inf`, `nan`, negative, empty, `1.5m`, `1x`).
    """
    value = text.strip()
    if _SECONDS.fullmatch(value):
        return float(value)
    m = _PROMETHEUS.fullmatch(value)
    if not value or m is None:
        raise ConfigError(f"{name}: not a duration: {text!r} (use e.g. 30s, 2m, 1h30m)")
    *whole, ms = m.groups()
    seconds = sum(int(n) * size for n, (_, size) in zip(whole, _UNITS, strict=True) if n)
    return seconds + (int(ms) / 1000 if ms else 0.0)
