"""One poll, off the event loop: validate, scan (or map), derive, relay and render into an Exposition."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from exporter.canonical import Canonical, Totals, merge_totals
from exporter.config import Config
from exporter.derive import Derived, Deriver
from exporter.expose import (
    CANONICAL_FAMILIES,
    CANONICAL_PREFIXES,
    OWN_FAMILIES,
    OWN_PREFIXES,
    Exposition,
    Health,
    OwnCollector,
    Report,
    render_own,
)
from exporter.relay import drop_families, merge_fanin
from exporter.scan import find_prefixes, invalid_line, scan
from exporter.upstream import Scrape

__all__ = ["Pipeline", "build_version"]

log = logging.getLogger(__name__)


def build_version() -> str:
    try:
        return version("llm-monitoring")
    except PackageNotFoundError:
        return "unknown"


def _with_spend(derived: Derived, totals: Totals, resets: dict[str, int]) -> Derived:
    """The source's own spend wins for the models it prices; the price file fills in the others."""
    spend = {model: usd for (model,), usd in totals.counters.get("cost", {}).items()}
    cost, unpriced = derived.cost, derived.unpriced
    if spend:
        merged = dict(cost or ())
        merged.update(spend)
        cost = list(merged.items())
        unpriced = [(m, v) for m, v in unpriced or () if m not in spend] if unpriced is not None else None
    return dataclasses.replace(derived, cost=cost, unpriced=unpriced, resets=resets)


class Pipeline:
    """The synchronous heart of the sidecar; one per app, called by one poller at a time."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._deriver = Deriver(config)
        self._collector = OwnCollector(config.daily_budget_usd)
        self._version = build_version()
        self.health: dict[str, Health] = {name: Health() for name in config.upstream_labels}
        self._warned_clash: set[bytes] = set()
        self._own_families, self._own_prefixes = OWN_FAMILIES, OWN_PREFIXES
        self._canonical: dict[str, Canonical] = {}
        self._missing: tuple[str, ...] = ()
        if config.mapping is not None:
            mapping = config.mapping.mapping
            self._canonical = {name: Canonical(mapping, config.max_series) for name in config.upstream_labels}
            self._own_families = OWN_FAMILIES | CANONICAL_FAMILIES
            self._own_prefixes = (*OWN_PREFIXES, *CANONICAL_PREFIXES)
            # Spend from a price file fills in for a source without its own.
            self._missing = tuple(
                m for m in mapping.missing() if not (m == "llm_cost_usd_total" and config.prices is not None)
            )
            log.info(
                "mapping source families onto the canonical ones",
                extra={"mapping": config.mapping.name, "relay": config.relay, "missing": list(self._missing)},
            )
            if self._missing:
                log.warning(
                    "the mapping has no source for some canonical families: alerts on them cannot fire",
                    extra={"mapping": config.mapping.name, "missing": list(self._missing)},
                )

    def _check(self, result: Scrape) -> Scrape:
        if result.body is None:
            return result
        engine = self._canonical.get(result.upstream)
        # With a mapping, only the lines that changed since the last poll are checked (the rest were before).
        line = engine.invalid_line(result.body) if engine else invalid_line(result.body)
        if line is not None:
            return Scrape(result.upstream, None, "invalid", result.duration, f"not exposition text at line {line}")
        return result

    def _record(self, result: Scrape, wall: float) -> None:
        health = self.health[result.upstream]
        health.duration = result.duration
        health.up = result.ok
        if result.ok:
            health.last_success = wall
            return
        health.errors[result.reason or "connection"] = health.errors.get(result.reason or "connection", 0) + 1
        # Only the reason and our own detail text: never the URL or an exception message that could hold it.
        log.warning(
            "upstream scrape failed",
            extra={"upstream": result.upstream, "reason": result.reason, "detail": result.detail},
        )

    def _map(self, result: Scrape) -> list[tuple[bytes, bytes]] | None:
        """The canonical samples of one upstream's answer; counts and logs an answer the mapping misses."""
        if result.body is None:
            return None
        engine, health = self._canonical[result.upstream], self.health[result.upstream]
        matched = engine.ingest(result.body) > 0
        if not matched:
            health.errors["mapping"] = health.errors.get("mapping", 0) + 1
            if health.mapped is not False:
                log.warning(
                    "the mapping matches nothing in the upstream's answer: no canonical families from it",
                    extra={"upstream": result.upstream, "mapping": self._config.mapping.name},  # type: ignore[union-attr]
                )
        health.mapped = matched
        return engine.samples()

    def mapping_ok(self) -> bool:
        """False while a mapping is set and no upstream's last answer had any of its series."""
        return not self._canonical or any(h.mapped for h in self.health.values())

    def _relay(self, results: Sequence[Scrape]) -> tuple[bytes, set[bytes]]:
        if self._config.relay == "canonical":
            return b"", set()
        ok = [r for r in results if r.body is not None]
        if len(self._config.upstream_urls) == 1:
            if not ok:
                return b"", set()
            body = ok[0].body or b""
            if not find_prefixes(body, self._own_prefixes):
                return body, set()  # the common case: the bytes pass through untouched
            filtered, dropped = drop_families(body, self._own_families)
            return (filtered if dropped else body), dropped
        return merge_fanin([(r.upstream, r.body or b"") for r in ok], self._own_families)

    def process(self, results: Sequence[Scrape], wall: float, now: float) -> Exposition:
        """One poll's scrapes (in any order) at unix time `wall` and monotonic `now` → the new exposition."""
        checked = [self._check(r) for r in results]
        for result in checked:
            self._record(result, wall)
        canonical = None
        if self._canonical:
            scans = {r.upstream: self._map(r) for r in checked}
            canonical = merge_totals([engine.totals() for engine in self._canonical.values()])
            resets = {name: engine.resets for name, engine in self._canonical.items()}
            derived = _with_spend(self._deriver.update(scans, now), canonical, resets)
        else:
            scans = {r.upstream: (scan(r.body) if r.body is not None else None) for r in checked}
            derived = self._deriver.update(scans, now)
        relay, dropped = self._relay(checked)
        for family in dropped - self._warned_clash:
            # Our families win: two families of one name would make the whole exposition invalid.
            log.warning(
                "upstream family has the name of one of the sidecar's own; left out of the relay",
                extra={"family": family.decode()},
            )
            self._warned_clash.add(family)
        self._collector.report = Report(
            self.health,
            derived,
            self._version,
            tuple(sorted(f.decode() for f in dropped)),
            canonical=canonical,
            missing=self._missing,
        )
        return Exposition(relay, render_own(self._collector))

    def pending(self) -> Exposition:
        """What /metrics shows before the first poll has finished: health only, nothing up yet."""
        # Its own collector: a poll may be rendering in its thread right now.
        collector = OwnCollector(self._config.daily_budget_usd)
        collector.report = Report({name: Health() for name in self.health}, None, self._version, missing=self._missing)
        return Exposition(b"", render_own(collector))
