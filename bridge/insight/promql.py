"""An alert's expression from its generatorURL, split into the series to draw and the threshold it compares with."""

from __future__ import annotations

import math
import re
from urllib.parse import parse_qs, urlsplit

__all__ = ["expression_from", "split_threshold"]

_SET_OPERATORS = ("and", "or", "unless")
_COMPARISONS = ("==", "!=", ">=", "<=", ">", "<")
_NUMBER = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")
_MAX_EXPRESSION = 4000


def expression_from(generator_url: str) -> str | None:
    """The expression Prometheus put in an alert's generatorURL (`g0.expr`); only the expression, never the host."""
    try:
        query = parse_qs(urlsplit(generator_url).query)
    except ValueError:
        return None
    values = query.get("g0.expr") or []
    expr = values[0].strip() if values else ""
    return expr if expr and len(expr) <= _MAX_EXPRESSION else None


def _top_level(expr: str) -> list[tuple[int, str]]:
    """Positions and text of the operators outside any (), {}, [] or string: set operators and comparisons."""
    found: list[tuple[int, str]] = []
    depth, quote, i = 0, "", 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif depth == 0:
            word = re.match(r"[A-Za-z_]+", expr[i:])
            if word:
                if word.group(0) in _SET_OPERATORS and (i == 0 or not (expr[i - 1].isalnum() or expr[i - 1] == "_")):
                    found.append((i, word.group(0)))
                i += len(word.group(0))
                continue
            op = next((o for o in _COMPARISONS if expr.startswith(o, i)), None)
            if op:
                found.append((i, op))
                i += len(op)
                continue
        i += 1
    return found


def _unwrap(expr: str) -> str:
    """Without the parentheses that wrap all of it: `((a > 1))` is `a > 1`."""
    expr = expr.strip()
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr
        expr = expr[1:-1].strip()
    return expr


def split_threshold(expr: str) -> tuple[str, float | None]:
    """The series an alert watches and the number it compares it with, when it says so plainly.

    `(a > 0.2) and on (job) b >= 0.1` gives (`a`, 0.2): the first operand of `and`/`or`/`unless` is the
    condition, the rest only gates it. Without a comparison to a number the whole first operand is drawn.
    """
    expr = _unwrap(expr)
    for _ in range(8):  # nested parentheses around the condition
        ops = _top_level(expr)
        cut = next((i for i, op in ops if op in _SET_OPERATORS), None)
        if cut is None:
            break
        expr = _unwrap(expr[:cut])
    ops = [(i, op) for i, op in _top_level(expr) if op in _COMPARISONS]
    if not ops:
        return expr, None
    i, op = ops[-1]
    left, right = expr[:i].strip(), expr[i + len(op) :].strip()
    right = re.sub(r"^bool\s+", "", right)
    if _NUMBER.fullmatch(right):
        value = float(right)
        if math.isfinite(value):
            return _unwrap(left), value
    if _NUMBER.fullmatch(left):  # `0.2 < a`
        return _unwrap(right), float(left)
    return expr, None
