"""The sidecar's own families (derived and health) from a per-app registry, joined to the relayed bytes."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from exporter.canonical import Totals
from exporter.derive import DERIVED_GAUGES, Derived
from exporter.upstream import REASONS

__all__ = [
    "CANONICAL_FAMILIES",
    "CANONICAL_PREFIXES",
    "CONTENT_TYPE",
    "OWN_FAMILIES",
    "OWN_PREFIXES",
    "Exposition",
    "Health",
    "OwnCollector",
    "Report",
    "accepts_gzip",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
GZIP_LEVEL = 1  # level 9 costs ~20x the CPU for a few percent smaller bodies
# Every family name this module can write, as it appears in the text format (counters with _total).
OWN_FAMILIES: frozenset[bytes] = frozenset(
    name.encode()
    for name in (
        *DERIVED_GAUGES,
        "llm_cost_usd_total",
        "llm_exporter_unpriced_tokens_total",
        "llm_exporter_upstream_up",
        "llm_exporter_upstream_scrape_duration_seconds",
        "llm_exporter_upstream_scrape_errors_total",
        "llm_exporter_upstream_last_success_timestamp_seconds",
        "llm_exporter_upstream_resets_total",
        "llm_exporter_series_dropped_total",
        "llm_exporter_build_info",
        "llm_exporter_threshold_not_bucket_boundary",
        "llm_exporter_relay_families_dropped",
        "llm_daily_budget_usd",
        "llm_exporter_mapping_missing",
    )
)
# The canonical families a mapping adds (llm_cost_usd_total is in OWN_FAMILIES already).
CANONICAL_FAMILIES: frozenset[bytes] = frozenset(
    name.encode()
    for name in (
        "llm_requests_total",
        "llm_requests_failed_total",
        "llm_tokens_used_total",
        "llm_response_latency_seconds",
        "llm_time_to_first_token_seconds",
    )
)
CANONICAL_PREFIXES = (b"llm_requests_", b"llm_tokens_used", b"llm_response_latency_seconds", b"llm_time_to_first")
_CANONICAL_HELP = {
    "requests": ("llm_requests", "Requests, failed ones included, summed over the source's labels but model"),
    "failed": ("llm_requests_failed", "Failed requests, summed over the source's labels but model"),
    "tokens": ("llm_tokens_used", "Tokens used by type (prompt, completion), summed over the source's labels"),
    "latency": ("llm_response_latency_seconds", "Response latency in seconds, summed over the source's labels"),
    "time_to_first_token": ("llm_time_to_first_token_seconds", "Time to the first token in seconds, by model"),
}
# Cheap substring pre-check: an upstream body without any of these cannot clash with OWN_FAMILIES.
OWN_PREFIXES = (
    b"llm_request_",
    b"llm_response_latency_p",
    b"llm_tokens_per_",
    b"llm_requests_per_",
    b"llm_slow_",
    b"llm_token_surge",
    b"llm_cost_",
    b"llm_daily_budget",
    b"llm_exporter_",
)


@dataclass
class Health:
    """One upstream's health as of the last poll."""

    up: bool = False
    duration: float = 0.0
    errors: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    last_success: float = 0.0  # unix time; 0 until the first success
    mapped: bool | None = None  # with a mapping: whether the last answer had any mapped series


@dataclass(frozen=True)
class Report:
    """Everything the own families show, for one poll."""

    health: Mapping[str, Health]
    derived: Derived | None
    version: str
    relay_dropped: tuple[str, ...] = ()
    canonical: Totals | None = None  # with a mapping: the canonical families, summed over upstreams
    missing: tuple[str, ...] = ()  # canonical families the mapping has no source for


def _families(name: str, documentation: str, families: tuple[str, ...]) -> GaugeMetricFamily:
    """A gauge of 1 per named family."""
    gauge = GaugeMetricFamily(name, documentation, labels=["family"])
    for family in families:
        gauge.add_metric([family], 1.0)
    return gauge


class OwnCollector:
    """A prometheus_client collector: fresh families from the latest Report on every collect()."""

    def __init__(self, daily_budget_usd: float | None = None) -> None:
        self.report: Report | None = None
        self.daily_budget_usd = daily_budget_usd

    def collect(self) -> Iterator[Metric]:
        report = self.report
        if report is None:
            return
        if self.daily_budget_usd is not None:
            # Rules cannot read the sidecar's settings: the budget alert compares spend with this gauge.
            yield GaugeMetricFamily(
                "llm_daily_budget_usd",
                "LLM_DAILY_BUDGET_USD: the daily spend budget in USD",
                value=self.daily_budget_usd,
            )
        yield from self._health(report)
        if report.canonical is not None:
            yield from self._canonical(report.canonical)
        if report.derived is not None:
            yield from self._derived(report.derived)

    def _health(self, report: Report) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "llm_exporter_upstream_up", "1 if the last scrape of the upstream succeeded", labels=["upstream"]
        )
        duration = GaugeMetricFamily(
            "llm_exporter_upstream_scrape_duration_seconds",
            "Duration of the last scrape of the upstream",
            labels=["upstream"],
        )
        errors = CounterMetricFamily(
            "llm_exporter_upstream_scrape_errors",
            "Failed scrapes of the upstream, by reason",
            labels=["upstream", "reason"],
        )
        last = GaugeMetricFamily(
            "llm_exporter_upstream_last_success_timestamp_seconds",
            "Unix time of the last successful scrape of the upstream (0: none yet)",
            labels=["upstream"],
        )
        resets = CounterMetricFamily(
            "llm_exporter_upstream_resets",
            "Polls in which upstream counters went down (a proxy restart)",
            labels=["upstream"],
        )
        derived = report.derived
        for name, health in report.health.items():
            up.add_metric([name], 1.0 if health.up else 0.0)
            duration.add_metric([name], health.duration)
            for reason, count in health.errors.items():
                errors.add_metric([name, reason], count)
            last.add_metric([name], health.last_success)
            resets.add_metric([name], derived.resets.get(name, 0) if derived else 0)
        yield from (up, duration, errors, last, resets)
        yield CounterMetricFamily(
            "llm_exporter_series_dropped",
            'Label sets folded into model="__other__" past EXPORTER_MAX_SERIES',
            value=derived.dropped if derived else 0,
        )
        info = GaugeMetricFamily("llm_exporter_build_info", "Version of the sidecar", labels=["version"])
        info.add_metric([report.version], 1.0)
        yield info
        if report.relay_dropped:
            yield _families(
                "llm_exporter_relay_families_dropped",
                "Upstream families left out of the relay: their names are the sidecar's own",
                report.relay_dropped,
            )
        if report.missing:
            yield _families(
                "llm_exporter_mapping_missing",
                "1: EXPORTER_MAPPING has no source for this canonical family (alerts on it cannot fire)",
                report.missing,
            )
        if derived is not None and derived.threshold_not_boundary:
            yield GaugeMetricFamily(
                "llm_exporter_threshold_not_bucket_boundary",
                "1: EXPORTER_LATENCY_THRESHOLD is not a latency bucket boundary, the slow ratio is interpolated",
                value=1.0,
            )

    @staticmethod
    def _canonical(totals: Totals) -> Iterator[Metric]:
        for key in ("requests", "failed", "tokens"):
            rows = totals.counters.get(key)
            if not rows:
                continue
            name, help_text = _CANONICAL_HELP[key]
            family = CounterMetricFamily(name, help_text, labels=["model", "type"] if key == "tokens" else ["model"])
            for labels, value in rows.items():
                family.add_metric(list(labels), value)
            yield family
        for key in ("latency", "time_to_first_token"):
            models = totals.models(key)
            if not models:
                continue
            name, help_text = _CANONICAL_HELP[key]
            histogram = HistogramMetricFamily(name, help_text, labels=["model"])
            for model in models:
                buckets, total = totals.histogram(key, model)
                histogram.add_metric([model], [(floatToGoString(le), v) for le, v in buckets], total)
            yield histogram

    @staticmethod
    def _derived(derived: Derived) -> Iterator[Metric]:
        labels = list(derived.label_names)
        for name, help_text in DERIVED_GAUGES.items():
            rows = derived.gauges.get(name)
            if not rows:
                continue
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for values, value in rows:
                family.add_metric(list(values), value)
            yield family
        if derived.cost is not None:
            cost = CounterMetricFamily(
                "llm_cost_usd", "Spend in USD from tokens used and EXPORTER_PRICES_FILE", labels=["model"]
            )
            for model, usd in derived.cost:
                cost.add_metric([model], usd)
            yield cost
        if derived.unpriced:
            unpriced = CounterMetricFamily(
                "llm_exporter_unpriced_tokens",
                "Tokens of models without a price in EXPORTER_PRICES_FILE",
                labels=["model"],
            )
            for model, tokens in derived.unpriced:
                unpriced.add_metric([model], tokens)
            yield unpriced


def render_own(collector: OwnCollector) -> bytes:
    """The own families as text 0.0.4, from a registry holding only `collector` (no process collectors)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


class Exposition:
    """One poll's complete /metrics body; its gzip form is made once, on first demand, off the loop."""

    def __init__(self, relay: bytes, own: bytes) -> None:
        if relay and not relay.endswith(b"\n"):
            relay += b"\n"
        self.body = relay + own
        self._gzip: asyncio.Future[bytes] | None = None

    async def gzipped(self) -> bytes:
        if self._gzip is None:
            self._gzip = asyncio.ensure_future(asyncio.to_thread(gzip.compress, self.body, GZIP_LEVEL))
        return await asyncio.shield(self._gzip)


def accepts_gzip(header: str | None) -> bool:
    """True if an Accept-Encoding header allows gzip (q=0 refuses it)."""
    for part in (header or "").split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() in ("gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False
