"""Mapping files: how a gateway's families become the canonical ones; YAML, validated, presets shipped."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from common.errors import ConfigError
from common.yamlfile import read_yaml

__all__ = [
    "CANONICAL",
    "FAMILY_KEYS",
    "PRESETS_DIR",
    "HistogramSource",
    "Loaded",
    "MappingError",
    "SeriesSource",
    "SourceMapping",
    "TokenSource",
    "load_mapping",
    "parse_mapping",
    "preset_names",
    "resolve_mapping",
]

PRESETS_DIR = Path(__file__).resolve().parent / "mappings"
# Mapping key → the canonical family it fills (the name as exposed, counters with _total).
CANONICAL: dict[str, str] = {
    "requests": "llm_requests_total",
    "failed": "llm_requests_failed_total",
    "tokens": "llm_tokens_used_total",
    "latency": "llm_response_latency_seconds",
    "time_to_first_token": "llm_time_to_first_token_seconds",
    "cost": "llm_cost_usd_total",
}
FAMILY_KEYS = tuple(CANONICAL)
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Units a histogram may be in, and the factor to seconds.
UNITS = {"seconds": 1.0, "milliseconds": 0.001}


class MappingError(ValueError):
    """The mapping is unusable; the message names the file and the key."""


def _label(value: str) -> str:
    if not _LABEL_NAME.match(value):
        raise ValueError(f"{value!r} is not a label name")
    return value


def _metric(value: str) -> str:
    if not _METRIC_NAME.match(value):
        raise ValueError(f"{value!r} is not a metric name")
    return value


class _Source(BaseModel):
    """What every source entry may say: which of its series count, and which label is the model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Label → regular expression the value must match in full (a missing label reads ""), as PromQL's =~.
    match: dict[str, str] = Field(default_factory=dict)
    # Overrides the mapping's model_label for this source only.
    model_label: str | None = None

    @field_validator("match")
    @classmethod
    def _check_match(cls, value: dict[str, str]) -> dict[str, str]:
        for label, pattern in value.items():
            _label(label)
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{label}: {pattern!r} is not a regular expression ({exc})") from None
        return value

    @field_validator("model_label")
    @classmethod
    def _check_model_label(cls, value: str | None) -> str | None:
        return None if value is None else _label(value)


class SeriesSource(_Source):
    """A counter-like sample (a counter, or a histogram's _count or _sum) summed into one canonical counter."""

    series: str

    @field_validator("series")
    @classmethod
    def _check_series(cls, value: str) -> str:
        return _metric(value)


class TokenSource(SeriesSource):
    """Token counts: every sample of one type, or the type read from a label (other values left out)."""

    type: Literal["prompt", "completion"] | None = None
    type_label: str | None = None
    types: dict[str, Literal["prompt", "completion"]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_way(self) -> TokenSource:
        if (self.type is None) == (self.type_label is None):
            raise ValueError("set either type (prompt or completion) or type_label with types")
        if self.type_label is not None:
            _label(self.type_label)
            if not self.types:
                raise ValueError("types: required with type_label (label value → prompt or completion)")
        elif self.types:
            raise ValueError("types: only with type_label")
        return self


class HistogramSource(_Source):
    """A histogram (its _bucket, _sum and _count) in seconds or milliseconds."""

    histogram: str
    unit: Literal["seconds", "milliseconds"]

    @field_validator("histogram")
    @classmethod
    def _check_histogram(cls, value: str) -> str:
        return _metric(value)


class SourceMapping(BaseModel):
    """One mapping file. The four core families are required (an empty list: the source has none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str
    model_label: str
    requests: list[SeriesSource]
    failed: list[SeriesSource]
    tokens: list[TokenSource]
    latency: list[HistogramSource]
    time_to_first_token: list[HistogramSource] = Field(default_factory=list)
    cost: list[SeriesSource] = Field(default_factory=list)

    @field_validator("model_label")
    @classmethod
    def _check_model_label(cls, value: str) -> str:
        return _label(value)

    def missing(self) -> tuple[str, ...]:
        """Canonical family names this mapping has no source for."""
        return tuple(CANONICAL[key] for key in FAMILY_KEYS if not getattr(self, key))


@dataclass(frozen=True)
class Loaded:
    """A validated mapping and where it came from (a preset name or a file path)."""

    name: str
    mapping: SourceMapping


def parse_mapping(doc: object, source: str) -> SourceMapping:
    """A loaded YAML document → SourceMapping; MappingError names `source` and the key."""
    if not isinstance(doc, Mapping):
        raise MappingError(f"{source}: expected a mapping with description, model_label, requests, failed, …")
    try:
        return SourceMapping.model_validate(doc)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        if first["type"] == "extra_forbidden":
            message = "unknown key"
        elif first["type"] == "missing":
            message = "missing"
        else:
            message = first["msg"].removeprefix("Value error, ")
        raise MappingError(f"{source}: {loc or 'top level'}: {message}") from None


def load_mapping(path: Path) -> SourceMapping:
    """Read and validate a mapping file."""
    try:
        doc = read_yaml(path)
    except ConfigError as exc:
        raise MappingError(str(exc)) from None
    return parse_mapping(doc, str(path))


def preset_names() -> tuple[str, ...]:
    """The presets shipped in the package, `llm` first."""
    names = sorted(p.stem for p in PRESETS_DIR.glob("*.yaml"))
    return tuple(sorted(names, key=lambda n: n != "llm"))


def resolve_mapping(value: str) -> Loaded:
    """A preset name or the path of a mapping file → the validated mapping; MappingError otherwise."""
    value = value.strip()
    if value in preset_names():
        return Loaded(value, load_mapping(PRESETS_DIR / f"{value}.yaml"))
    path = Path(value)
    if not path.suffix and not path.exists():
        raise MappingError(f"{value!r} is neither a preset ({', '.join(preset_names())}) nor a file")
    return Loaded(str(path), load_mapping(path))
