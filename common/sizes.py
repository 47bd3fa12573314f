"""Sizes in bytes with Prometheus' rule: every unit (KB, KiB, K …) is a power of 1024."""

from __future__ import annotations

import re

from common.errors import ConfigError

__all__ = ["parse_size"]

# As Prometheus' --storage.tsdb.retention.size: K, KB and KiB all mean 1024, case-insensitive.
_SIZE = re.compile(r"(\d+(?:\.\d+)?|\.\d+)\s*(?:([kmgt])(?:i?b)?|b)?", re.IGNORECASE)
_POWERS = {"k": 1, "m": 2, "g": 3, "t": 4}


def parse_size(text: str, name: str) -> int:
    """`16M`, `16MB`, `16MiB` (all 16,777,216), `1.5MiB`, `512KiB` or a bare number of bytes → bytes.

    Raises ConfigError naming `name` for a negative number, an unknown unit or anything else.
    """
    m = _SIZE.fullmatch(text.strip())
    if m is None:
        raise ConfigError(f"{name}: not a size: {text!r} (use e.g. 16MiB, 512KiB, or bytes)")
    number, unit = m.groups()
    return int(float(number) * 1024 ** _POWERS[unit.lower()] if unit else float(number))
