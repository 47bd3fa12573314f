"""The price table: USD per million prompt / completion tokens, per model, from YAML."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from common.errors import ConfigError
from common.yamlfile import read_yaml

__all__ = ["Price", "Prices", "PricesError", "load_prices", "parse_prices"]

TOKEN_TYPES = ("prompt", "completion")


class PricesError(ValueError):
    """The price file is unusable; the message names the file and the key."""


@dataclass(frozen=True)
class Price:
    """USD per one million tokens of each type."""

    prompt: float
    completion: float

    def per_token(self, token_type: str) -> float | None:
        """USD for one token of `token_type`, or None for an unknown type."""
        if token_type == "prompt":
            return self.prompt / 1e6
        if token_type == "completion":
            return self.completion / 1e6
        return None


@dataclass(frozen=True)
class Prices:
    """Prices per model, with an optional default for models not listed."""

    models: Mapping[str, Price] = field(default_factory=lambda: MappingProxyType({}))
    default: Price | None = None

    def for_model(self, model: str) -> Price | None:
        return self.models.get(model, self.default)


def _price(where: str, raw: object) -> Price:
    if not isinstance(raw, Mapping):
        raise PricesError(f"{where}: expected a mapping with prompt and completion")
    unknown = set(raw) - set(TOKEN_TYPES)
    if unknown:
        raise PricesError(f"{where}: unknown key {sorted(map(str, unknown))[0]!r} (expected prompt, completion)")
    values = {}
    for key in TOKEN_TYPES:
        if key not in raw:
            raise PricesError(f"{where}.{key}: missing")
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise PricesError(f"{where}.{key}: expected a non-negative number of USD per 1M tokens")
        values[key] = float(value)
    return Price(**values)


def parse_prices(doc: object, source: str = "prices") -> Prices:
    """A loaded YAML document → Prices; PricesError names the key."""
    if not isinstance(doc, Mapping):
        raise PricesError(f"{source}: expected a mapping with `models:` (and optionally `default:`)")
    unknown = set(doc) - {"models", "default"}
    if unknown:
        raise PricesError(f"{source}: unknown key {sorted(map(str, unknown))[0]!r} (expected models, default)")
    models_raw = doc.get("models") or {}
    if not isinstance(models_raw, Mapping):
        raise PricesError(f"{source}: models: expected a mapping of model name to prices")
    models = {str(name): _price(f"{source}: models.{name}", raw) for name, raw in models_raw.items()}
    default = _price(f"{source}: default", doc["default"]) if doc.get("default") is not None else None
    return Prices(models=MappingProxyType(models), default=default)


def load_prices(path: Path) -> Prices:
    """Read and validate a price file."""
    try:
        doc = read_yaml(path)
    except ConfigError as exc:
        raise PricesError(str(exc)) from None
    return parse_prices(doc, str(path))
