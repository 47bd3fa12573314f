"""Snapshot ring of reset-aware running totals → derived gauges per window, surge, cost; PromQL semantics."""

from __future__ import annotations

import bisect
import logging
import math
from array import array
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from exporter.config import Config
from exporter.scan import FAILED, LATENCY_BUCKET, REQUESTS, TOKENS, parse_labels

__all__ = ["DERIVED_GAUGES", "OTHER", "QUANTILES", "Derived", "Deriver", "histogram_quantile"]

log = logging.getLogger(__name__)

OTHER = "__other__"
_INF = math.inf
QUANTILES = (
    (0.5, "llm_response_latency_p50_seconds"),
    (0.95, "llm_response_latency_p95_seconds"),
    (0.99, "llm_response_latency_p99_seconds"),
)
DERIVED_GAUGES = {
    "llm_request_failure_ratio": "Failed requests / all requests over the window",
    "llm_response_latency_p50_seconds": "Median response latency over the window (histogram_quantile on buckets)",
    "llm_response_latency_p95_seconds": "95th percentile response latency over the window",
    "llm_response_latency_p99_seconds": "99th percentile response latency over the window",
    "llm_tokens_per_request": "Tokens used per request over the window",
    "llm_requests_per_second": "Requests per second over the window",
    "llm_tokens_per_second": "Tokens per second over the window",
    "llm_slow_request_ratio": "Share of requests slower than EXPORTER_LATENCY_THRESHOLD over the window",
    "llm_request_surge_ratio": "Request rate over the window / the same window EXPORTER_BASELINE earlier",
    "llm_token_surge_ratio": "Token rate over the window / the same window EXPORTER_BASELINE earlier",
}


def histogram_quantile(q: float, buckets: Sequence[tuple[float, float]]) -> float:
    """PromQL's histogram_quantile on (upper bound, cumulative count) pairs; NaN where PromQL gives NaN."""
    if math.isnan(q):
        return math.nan
    if q < 0:
        return -_INF
    if q > 1:
        return _INF
    if not buckets:
        return math.nan
    ordered = sorted(buckets)
    if ordered[-1][0] != _INF:
        return math.nan
    merged: list[list[float]] = []  # coalesce equal bounds, then force the counts monotonic, as Prometheus does
    for le, count in ordered:
        if merged and merged[-1][0] == le:
            merged[-1][1] += count
        else:
            merged.append([le, count])
    highest = merged[0][1]
    for b in merged[1:]:
        highest = b[1] = max(b[1], highest)
    if len(merged) < 2:
        return math.nan
    observations = merged[-1][1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next((i for i in range(len(merged) - 1) if merged[i][1] >= rank), len(merged) - 1)
    if b == len(merged) - 1:
        return merged[-2][0]
    if b == 0 and merged[0][0] <= 0:
        return merged[0][0]
    start, end, count = 0.0, merged[b][0], merged[b][1]
    if b > 0:
        start = merged[b - 1][0]
        count -= merged[b - 1][1]
        rank -= merged[b - 1][1]
    return start + (end - start) * (rank / count)


def _slow_ratio(buckets: Sequence[tuple[float, float]], threshold: float) -> float:
    """Share above `threshold`: exact on a bucket boundary, else interpolated linearly as quantiles are."""
    total = buckets[-1][1]
    below = 0.0
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if math.isclose(le, threshold):
            below = count
            break
        if le > threshold:
            if le != _INF and le > prev_le:
                below = prev_count + (count - prev_count) * (threshold - prev_le) / (le - prev_le)
            else:
                below = prev_count
            break
        prev_le, prev_count = le, count
    return max(0.0, 1.0 - below / total)


class _Group:
    """Slots of one derived label set in the running-totals array (-1: not seen yet)."""

    __slots__ = ("buckets", "fail", "index", "key", "req", "tok")

    def __init__(self, key: tuple[str, ...], index: int) -> None:
        self.key, self.index = key, index
        self.req = self.fail = self.tok = -1
        self.buckets: dict[float, int] = {}


@dataclass
class _Upstream:
    """Per-upstream memory: last raw value per series and the series' classification."""

    seen: bool = False
    resets: int = 0
    last: dict[bytes, float] = field(default_factory=dict)
    info: dict[bytes, tuple[int, int, float | None]] = field(default_factory=dict)


@dataclass(frozen=True)
class Derived:
    """One poll's derived values, ready to be exposed."""

    label_names: tuple[str, ...]
    gauges: Mapping[str, list[tuple[tuple[str, ...], float]]]
    cost: list[tuple[str, float]] | None
    unpriced: list[tuple[str, float]] | None
    resets: Mapping[str, int]
    dropped: int
    threshold_not_boundary: bool


class Deriver:
    """Feed it each poll's scanned samples; it keeps running totals and answers per-window values."""

    def __init__(self, config: Config) -> None:
        self._cfg = config
        self._windows = config.windows
        self._longest = max(w.seconds for w in config.windows)
        self._tolerance = config.poll_interval / 2
        self._totals = array("d")
        self._ring: deque[tuple[float, array]] = deque()
        self._rates: deque[tuple[float, array]] = deque()  # per poll: rate per group/window, for surge
        self._groups: dict[tuple[str, ...], _Group] = {}
        self._group_list: list[_Group] = []
        self._dropped: set[tuple[str, ...]] = set()
        self._upstreams: dict[str, _Upstream] = {}
        self._models: dict[str, int] = {}
        self._model_names: list[str] = []
        self._cost: list[float] = []
        self._unpriced: list[float] = []
        self._not_boundary = False

    # -- ingest -----------------------------------------------------------------------------------------

    def _slot(self) -> int:
        self._totals.append(0.0)
        return len(self._totals) - 1

    def _group(self, key: tuple[str, ...]) -> _Group:
        group = self._groups.get(key)
        if group is not None:
            return group
        real = len(self._group_list) - (1 if (OTHER,) * len(key) in self._groups else 0)
        if real >= self._cfg.max_series:
            self._dropped.add(key)
            key = (OTHER,) * len(key)
            group = self._groups.get(key)
            if group is not None:
                return group
        group = _Group(key, len(self._group_list))
        self._groups[key] = group
        self._group_list.append(group)
        return group

    def _model(self, model: str) -> int:
        index = self._models.get(model)
        if index is None:
            if len(self._model_names) >= self._cfg.max_series and model != OTHER:
                self._dropped.add((model,))
                return self._model(OTHER)
            index = self._models[model] = len(self._model_names)
            self._model_names.append(model)
            self._cost.append(0.0)
            self._unpriced.append(0.0)
        return index

    def _classify(self, upstream: str, series: bytes) -> tuple[int, int, float | None]:
        labels = parse_labels(series)
        if "upstream" in self._cfg.group_by:
            labels["upstream"] = upstream
        group = self._group(tuple(labels.get(name, "") for name in self._cfg.group_by))
        name = series.split(b"{", 1)[0]
        if name == LATENCY_BUCKET:
            try:
                le = float(labels.get("le", ""))
            except ValueError:
                return -1, -1, None
            slot = group.buckets.get(le)
            if slot is None:
                slot = group.buckets[le] = self._slot()
            return slot, -1, None
        attr = "req" if name == REQUESTS else "fail" if name == FAILED else "tok"
        slot = getattr(group, attr)
        if slot < 0:
            slot = self._slot()
            setattr(group, attr, slot)
        if name != TOKENS or self._cfg.prices is None:
            return slot, -1, None
        model = labels.get("model", "")
        price = self._cfg.prices.for_model(model)
        return slot, self._model(model), price.per_token(labels.get("type", "")) if price else None

    def _ingest(self, upstream: str, samples: Sequence[tuple[bytes, bytes]]) -> None:
        state = self._upstreams.setdefault(upstream, _Upstream())
        first, last, info, totals = not state.seen, state.last, state.info, self._totals
        cost, unpriced = self._cost, self._unpriced
        current: dict[bytes, float] = {}
        reset = False
        for series, raw in samples:
            try:
                value = float(raw)
            except ValueError:
                continue
            if not 0.0 <= value < _INF:  # NaN, Inf and negatives never enter the totals
                continue
            current[series] = value
            previous = last.get(series)
            if previous is None:
                if first:  # the first sight of an upstream is the baseline, not an increase
                    continue
                delta = value  # a series born since the last poll counted up from zero
            elif value >= previous:
                delta = value - previous
            else:  # a counter reset: as PromQL's rate, the increase is the new value
                delta = value
                reset = True
            if delta:  # classified lazily: idle series cost no label parsing and take no slot
                entry = info.get(series)
                if entry is None:
                    entry = info[series] = self._classify(upstream, series)
                slot, model, per_token = entry
                if slot >= 0:
                    totals[slot] += delta
                if model >= 0:
                    if per_token is None:
                        unpriced[model] += delta
                    else:
                        cost[model] += delta * per_token
        state.seen, state.last = True, current
        state.resets += reset
        if len(info) > 2 * len(current) + 1000:  # forget the classification of long-gone series
            state.info = {s: info[s] for s in current if s in info}

    # -- derive ---------------------------------------------------------------------------------------

    def update(self, scans: Mapping[str, Sequence[tuple[bytes, bytes]] | None], now: float) -> Derived:
        """Take one poll (None: that upstream failed) at time `now` (seconds) and derive every window."""
        if any(samples is not None for samples in scans.values()):
            for upstream, samples in scans.items():
                if samples is not None:
                    self._ingest(upstream, samples)
            self._ring.append((now, self._totals[:]))
        while len(self._ring) > 1 and self._ring[0][0] < now - self._longest - 2 * self._tolerance:
            self._ring.popleft()
        return self._derive(now)

    def _window_start(self, now: float, seconds: float) -> tuple[float, array] | None:
        lowest = now - seconds - self._tolerance
        index = bisect.bisect_left(self._ring, lowest, key=lambda entry: entry[0])
        return self._ring[index] if index < len(self._ring) else None

    def _earlier_rates(self, now: float) -> array | None:
        target = now - self._cfg.baseline
        while len(self._rates) > 1 and self._rates[1][0] <= target:
            self._rates.popleft()  # keep one entry at or before the target, and all after it
        best = min(self._rates, key=lambda entry: abs(entry[0] - target), default=None)
        if best is None or abs(best[0] - target) > 2 * self._tolerance:
            return None
        return best[1]

    def _derive(self, now: float) -> Derived:
        gauges: dict[str, list[tuple[tuple[str, ...], float]]] = {name: [] for name in DERIVED_GAUGES}
        n_windows = len(self._windows)
        rates = array("d", [math.nan]) * (2 * n_windows * len(self._group_list))
        earlier = self._earlier_rates(now)
        threshold = self._cfg.latency_threshold
        latest_ts, latest = self._ring[-1] if self._ring else (now, self._totals)

        def put(name: str, labels: tuple[str, ...], value: float) -> None:
            if math.isfinite(value):
                gauges[name].append((labels, value))

        for wi, window in enumerate(self._windows):
            start = self._window_start(now, window.seconds)
            if start is None or start[0] >= latest_ts:
                continue
            span = latest_ts - start[0]
            old = start[1]
            n_old = len(old)

            def delta(slot: int, old: array = old, n_old: int = n_old) -> float:
                if slot < 0:
                    return 0.0
                return latest[slot] - (old[slot] if slot < n_old else 0.0)

            for group in self._group_list:
                d_req, d_fail, d_tok = delta(group.req), delta(group.fail), delta(group.tok)
                buckets = sorted((le, delta(slot)) for le, slot in group.buckets.items())
                d_count = buckets[-1][1] if buckets and buckets[-1][0] == _INF else 0.0
                if d_req <= 0 and d_tok <= 0 and d_count <= 0:
                    continue  # no traffic in the window: no series, never NaN
                labels = (*group.key, window.label)
                base = 2 * (group.index * n_windows + wi)
                if d_req > 0:
                    rps = d_req / span
                    put("llm_request_failure_ratio", labels, d_fail / d_req)
                    put("llm_tokens_per_request", labels, d_tok / d_req)
                    put("llm_requests_per_second", labels, rps)
                    rates[base] = rps
                if d_req > 0 or d_tok > 0:
                    tps = d_tok / span
                    put("llm_tokens_per_second", labels, tps)
                    rates[base + 1] = tps
                if d_count > 0:
                    for q, name in QUANTILES:
                        put(name, labels, histogram_quantile(q, buckets))
                    if not any(math.isclose(le, threshold) for le, _ in buckets) and not self._not_boundary:
                        self._not_boundary = True
                        log.warning(
                            "latency threshold is not a bucket boundary: the slow ratio is interpolated",
                            extra={"threshold": threshold, "buckets": [le for le, _ in buckets]},
                        )
                    put("llm_slow_request_ratio", labels, _slow_ratio(buckets, threshold))
                if earlier is not None and base + 1 < len(earlier):
                    for offset, name in ((0, "llm_request_surge_ratio"), (1, "llm_token_surge_ratio")):
                        before, now_rate = earlier[base + offset], rates[base + offset]
                        if before > 0 and now_rate == now_rate:  # absent while the earlier rate is zero or NaN
                            put(name, labels, now_rate / before)
        self._rates.append((now, rates))

        priced = self._cfg.prices is not None
        return Derived(
            label_names=(*self._cfg.group_by, "window"),
            gauges=gauges,
            cost=list(zip(self._model_names, self._cost, strict=True)) if priced else None,
            unpriced=[(m, v) for m, v in zip(self._model_names, self._unpriced, strict=True) if v] if priced else None,
            resets={name: state.resets for name, state in self._upstreams.items()},
            dropped=len(self._dropped),
            threshold_not_boundary=self._not_boundary,
        )
