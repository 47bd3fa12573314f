"""PLACEHOLDER until the common branch lands."""

from __future__ import annotations


def parse_size(text: str, name: str) -> int:
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    mult = {"k": 1024, "m": 1024**2, "g": 1024**3}.get(t[-1:], 1)
    return int(float(t.rstrip("kmg")) * mult)
