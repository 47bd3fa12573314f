"""A mapped source's series → canonical totals by model: scanned by name, summed, reset-aware, unit-converted."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from exporter.mapping import CANONICAL, UNITS, HistogramSource, SeriesSource, SourceMapping, TokenSource
from exporter.scan import invalid_line, parse_labels

__all__ = ["HISTOGRAMS", "Canonical", "Totals", "escape", "merge_totals"]

_INF = math.inf
HISTOGRAMS = ("latency", "time_to_first_token")
# Folded-in models past EXPORTER_MAX_SERIES, as the deriver folds its label sets.
_OTHER = "__other__"


@dataclass(frozen=True)
class _Rule:
    """How one sample name feeds one canonical family."""

    family: str  # a mapping key: requests, failed, tokens, latency, time_to_first_token, cost
    role: str  # counter, bucket, sum or count
    model_label: str
    match: tuple[tuple[str, re.Pattern[str]], ...]
    token_type: str | None = None
    type_label: str | None = None
    types: tuple[tuple[str, str], ...] = ()
    divisor: float = 1.0  # unit → seconds, for bucket bounds and sums

    def target(self, labels: dict[str, str]) -> tuple[str, float] | None:
        """(sub-key, factor) of a sample with these labels, or None when the sample is not counted."""
        for label, pattern in self.match:
            if not pattern.fullmatch(labels.get(label, "")):
                return None
        if self.family == "tokens":
            if self.token_type is not None:
                return self.token_type, 1.0
            kind = dict(self.types).get(labels.get(self.type_label or "", ""))
            return (kind, 1.0) if kind else None  # other token types are parts or sums: left out
        if self.role == "bucket":
            try:
                le = float(labels.get("le", ""))
            except ValueError:
                return None
            return le if le == _INF else le / self.divisor, 1.0
        if self.role == "sum":
            return "sum", 1.0 / self.divisor
        if self.role == "count":
            return "count", 1.0
        return "", 1.0


def _rules(mapping: SourceMapping) -> dict[bytes, list[_Rule]]:
    rules: dict[bytes, list[_Rule]] = {}
    for family in CANONICAL:
        for source in getattr(mapping, family):
            common = {
                "family": family,
                "model_label": source.model_label or mapping.model_label,
                "match": tuple((k, re.compile(v)) for k, v in source.match.items()),
            }
            if isinstance(source, HistogramSource):
                divisor = 1.0 / UNITS[source.unit]
                for suffix, role in (("_bucket", "bucket"), ("_sum", "sum"), ("_count", "count")):
                    rule = _Rule(role=role, divisor=divisor, **common)
                    rules.setdefault((source.histogram + suffix).encode(), []).append(rule)
            elif isinstance(source, TokenSource):
                rule = _Rule(
                    role="counter",
                    token_type=source.type,
                    type_label=source.type_label,
                    types=tuple(source.types.items()),
                    **common,
                )
                rules.setdefault(source.series.encode(), []).append(rule)
            else:
                assert isinstance(source, SeriesSource)
                rules.setdefault(source.series.encode(), []).append(_Rule(role="counter", **common))
    return rules


def _alternatives(names: Iterable[bytes]) -> bytes:
    # Longest first so that no name is cut short by a shorter one it starts with.
    return b"(?:" + b"|".join(re.escape(n) for n in sorted(names, key=len, reverse=True)) + rb")[{ \t]"


def _scanner(names: Iterable[bytes]) -> re.Pattern[bytes]:
    # Whole lines of the mapped names (for check-mapping), anchored on "\n" as the default scan is.
    return re.compile(rb"\n(" + _alternatives(names) + rb"[^\n]*)")


def _split(line: bytes) -> tuple[bytes, bytes] | None:
    """(series, the rest: value and maybe a timestamp) of a sample line; the last `}` ends the label set."""
    cut = line.rfind(b"}")
    if cut >= 0:
        return line[: cut + 1], line[cut + 1 :]
    parts = line.split(None, 1)
    return (parts[0], parts[1]) if len(parts) == 2 else None


def _value(rest: bytes) -> float:
    try:
        return float(rest)  # the common case: just the value (float() takes the surrounding blanks)
    except ValueError:
        return float(rest.split()[0])  # a timestamp after it (IndexError when there is nothing)


def escape(value: str) -> str:
    """A label value as the text format writes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class Totals:
    """Canonical values by family key: counters by label values, histograms by model."""

    counters: dict[str, dict[tuple[str, ...], float]] = field(default_factory=dict)
    # family → model → {le: cumulative count}, and the sums and counts apart.
    buckets: dict[str, dict[str, dict[float, float]]] = field(default_factory=dict)
    sums: dict[str, dict[str, float]] = field(default_factory=dict)
    counts: dict[str, dict[str, float]] = field(default_factory=dict)

    def histogram(self, family: str, model: str) -> tuple[list[tuple[float, float]], float]:
        """Sorted (le, cumulative) with a +Inf bucket (the count when the source had none), and the sum."""
        buckets = dict(self.buckets.get(family, {}).get(model, {}))
        count = self.counts.get(family, {}).get(model, 0.0)
        if _INF not in buckets:
            buckets[_INF] = max([count, *buckets.values()])
        return sorted(buckets.items()), self.sums.get(family, {}).get(model, 0.0)

    def models(self, family: str) -> list[str]:
        """Models with a histogram in `family`, in first-seen order."""
        seen = dict.fromkeys(self.buckets.get(family, {}))
        seen.update(dict.fromkeys(self.counts.get(family, {})))
        return list(seen)


def merge_totals(parts: Sequence[Totals]) -> Totals:
    """The sum of several upstreams' totals: one series per model however many upstreams there are."""
    out = Totals()
    for part in parts:
        for family, rows in part.counters.items():
            target = out.counters.setdefault(family, {})
            for key, value in rows.items():
                target[key] = target.get(key, 0.0) + value
        for attr in ("sums", "counts"):
            for family, rows in getattr(part, attr).items():
                target = getattr(out, attr).setdefault(family, {})
                for model, value in rows.items():
                    target[model] = target.get(model, 0.0) + value
        for family, models in part.buckets.items():
            target_models = out.buckets.setdefault(family, {})
            for model, buckets in models.items():
                target = target_models.setdefault(model, {})
                for le, value in buckets.items():
                    target[le] = target.get(le, 0.0) + value
    return out


class Canonical:
    """One upstream's mapped series, accumulated into canonical totals that never go down.

    Each source series is compared with its value at the last poll; an increase is added to its canonical
    total, and a decrease (the source restarted) adds the new value, as PromQL's rate reads a reset. A series
    first seen counts from zero, so while nothing resets a total is the plain sum over the source's labels.
    """

    def __init__(self, mapping: SourceMapping, max_series: int = 10000) -> None:
        self.mapping = mapping
        self._rules = _rules(mapping)
        self._scan = _scanner(self._rules)
        self._name = re.compile(_alternatives(self._rules))  # does a line start with a mapped name?
        self._max_models = max_series
        self._models: set[str] = set()
        self._slots: dict[tuple[str, str, object], int] = {}
        self._keys: list[tuple[str, str, object]] = []
        self._totals: list[float] = []
        # Keyed by hash: 100,000 LiteLLM series are 33 MB of label text, their hashes a few MB.
        self._seen: dict[int, int | None] = {}  # hash of each line of the last poll → hash of its series, if mapped
        self._mapped = 0  # lines of the last poll that the mapping reads
        self._pending: tuple[bytes, dict[int, bytes], list[int] | set[int]] | None = None  # checked, not added
        self._last: dict[int, float] = {}  # series → its value at the last poll
        self._info: dict[int, tuple[tuple[int, float], ...]] = {}  # series → (slot, factor) of what it feeds
        self._interned: dict[tuple[tuple[int, float], ...], tuple[tuple[int, float], ...]] = {}
        self.resets = 0  # polls in which some source series went down
        self.dropped: set[str] = set()  # models folded into __other__

    @property
    def names(self) -> tuple[bytes, ...]:
        """Every sample name the mapping reads."""
        return tuple(self._rules)

    def _lines(self, body: bytes) -> list[bytes]:
        found = self._scan.findall(body)
        end = body.find(b"\n")
        first = self._scan.match(b"\n" + (body if end < 0 else body[:end]))
        if first:
            found.insert(0, first.group(1))
        return found

    def scan(self, body: bytes) -> list[tuple[bytes, bytes]]:
        """(series, value) of every sample with a mapped name."""
        out = []
        for line in self._lines(body):
            pair = _split(line)
            if pair is not None:
                out.append((pair[0], pair[1].split()[0] if pair[1].split() else b""))
        return out

    def _model(self, model: str) -> str:
        if model in self._models:
            return model
        if len(self._models) >= self._max_models:
            self.dropped.add(model)
            return _OTHER
        self._models.add(model)
        return model

    def _slot(self, key: tuple[str, str, object]) -> int:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = len(self._totals)
            self._keys.append(key)
            self._totals.append(0.0)
        return slot

    def classify(self, series: bytes) -> list[tuple[str, str, object, float]]:
        """(family, model, sub-key, factor) of every canonical total this series feeds."""
        name = series.split(b"{", 1)[0]
        labels = parse_labels(series)
        out = []
        for rule in self._rules.get(name, ()):
            target = rule.target(labels)
            if target is None:
                continue
            sub, factor = target
            family = rule.family
            if rule.role in ("sum", "count"):
                family = f"{family}:{rule.role}"
            out.append((family, labels.get(rule.model_label, ""), sub, factor))
        return out

    def _targets(self, series: bytes) -> tuple[tuple[int, float], ...]:
        targets = tuple(
            (self._slot((family, self._model(model), sub)), factor)
            for family, model, sub, factor in self.classify(series)
        )
        # One tuple per distinct target: the series of 100,000 keys feed a few hundred canonical slots.
        return self._interned.setdefault(targets, targets)

    def _prepare(self, body: bytes) -> tuple[dict[int, bytes], list[int] | set[int]]:
        """The answer's lines by hash, and the hashes of those not in the last poll's answer."""
        if self._pending is not None and self._pending[0] is body:
            return self._pending[1], self._pending[2]
        lines = body.split(b"\n")
        by_hash = dict(zip(map(hash, lines), lines, strict=True))
        # The first time in body order (models appear as served); then a set difference, in C.
        changed = by_hash.keys() - self._seen.keys() if self._seen else list(by_hash)
        self._pending = (body, by_hash, changed)
        return by_hash, changed

    def invalid_line(self, body: bytes) -> int | None:
        """exporter.scan.invalid_line, on the lines that changed since the last poll only: the others were
        checked when they came (every line is checked on its own, so the verdict is the same)."""
        by_hash, changed = self._prepare(body)
        if not changed:
            return None
        changed_lines = [by_hash[h] for h in changed]
        bad = invalid_line(b"\n".join(changed_lines))
        if bad is None:
            return None
        line = b"\n".join(changed_lines).split(b"\n")[bad - 1]
        return body.count(b"\n", 0, max(0, body.find(line))) + 1

    def ingest(self, body: bytes) -> int:
        """Add one poll's answer; returns how many samples had a mapped name (0: the mapping matches nothing).

        A line byte for byte as at the last poll is a series whose value did not move: only the other lines
        (usually a few hundred of 100,000) are looked at. Splitting into lines and comparing their hashes
        happens in C; it costs about half of a regex pass picking the mapped lines out of the body."""
        by_hash, changed = self._prepare(body)
        self._pending = None
        seen, last, info, totals = self._seen, self._last, self._info, self._totals
        gone = seen.keys() - by_hash.keys()  # lines whose value changed, or whose series vanished
        present: set[int] = set()
        reset = False
        for line_hash in changed:
            line = by_hash[line_hash]
            if not self._name.match(line):
                seen[line_hash] = None  # not a series the mapping reads (or a comment): never looked at again
                continue
            cut = line.rfind(b"}")
            if cut >= 0:
                series, rest = line[: cut + 1], line[cut + 1 :]
            else:
                pair = _split(line)
                if pair is None:
                    continue
                series, rest = pair
            try:
                value = _value(rest)
            except (ValueError, IndexError):
                continue
            if not 0.0 <= value < _INF:  # NaN, Inf and negatives never enter the totals
                continue
            key = hash(series)
            seen[line_hash] = key
            self._mapped += 1
            present.add(key)
            previous = last.get(key)
            last[key] = value
            if previous is None:
                delta = value  # first seen: counted up from zero
            elif value >= previous:
                delta = value - previous
            else:  # a counter reset: as PromQL's rate, the increase is the new value
                delta = value
                reset = True
            targets = info.get(key)
            if targets is None:
                targets = info[key] = self._targets(series)
            if delta:
                for slot, factor in targets:
                    totals[slot] += delta * factor
        for line_hash in gone:
            key = seen.pop(line_hash)
            if key is None:
                continue
            self._mapped -= 1
            if key not in present:  # vanished: if it comes back, it counts up from zero again
                last.pop(key, None)
                info.pop(key, None)
        self.resets += reset
        return self._mapped

    def totals(self) -> Totals:
        """The canonical values as of the last poll."""
        out = Totals()
        for (family, model, sub), value in zip(self._keys, self._totals, strict=True):
            base, _, role = family.partition(":")
            if base in HISTOGRAMS:
                if role == "sum":
                    out.sums.setdefault(base, {})[model] = value
                elif role == "count":
                    out.counts.setdefault(base, {})[model] = value
                else:
                    assert isinstance(sub, float)
                    out.buckets.setdefault(base, {}).setdefault(model, {})[sub] = value
            else:
                key = (model, sub) if base == "tokens" else (model,)
                out.counters.setdefault(base, {})[key] = value
        if self.mapping.failed and "requests" in out.counters:  # a model with requests and no failure reads 0
            failed = out.counters.setdefault("failed", {})
            for (model,) in out.counters["requests"]:
                failed.setdefault((model,), 0.0)
        return out

    def samples(self) -> list[tuple[bytes, bytes]]:
        """The four core canonical families as (series, value) samples, as the deriver reads the proxy's own."""
        return samples_of(self.totals())


def samples_of(totals: Totals) -> list[tuple[bytes, bytes]]:
    """(series, value) samples of the core canonical families in `totals`."""
    out: list[tuple[bytes, bytes]] = []
    for family in ("requests", "failed"):
        name = CANONICAL[family]
        for (model,), value in totals.counters.get(family, {}).items():
            out.append((f'{name}{{model="{escape(model)}"}}'.encode(), repr(value).encode()))
    for (model, kind), value in totals.counters.get("tokens", {}).items():
        out.append((f'llm_tokens_used_total{{model="{escape(model)}",type="{kind}"}}'.encode(), repr(value).encode()))
    for model in totals.models("latency"):
        buckets, _ = totals.histogram("latency", model)
        for le, value in buckets:
            le_text = "+Inf" if le == _INF else repr(le)
            series = f'llm_response_latency_seconds_bucket{{model="{escape(model)}",le="{le_text}"}}'
            out.append((series.encode(), repr(value).encode()))
    return out
