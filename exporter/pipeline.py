"""One poll, off the event loop: validate, scan, derive, relay and render into an Exposition."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from exporter.config import Config
from exporter.derive import Deriver
from exporter.expose import OWN_FAMILIES, OWN_PREFIXES, Exposition, Health, OwnCollector, Report, render_own
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


class Pipeline:
    """The synchronous heart of the sidecar; one per app, called by one poller at a time."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._deriver = Deriver(config)
        self._collector = OwnCollector(config.daily_budget_usd)
        self._version = build_version()
        self.health: dict[str, Health] = {name: Health() for name in config.upstream_labels}
        self._warned_clash: set[bytes] = set()

    def _check(self, result: Scrape) -> Scrape:
        if result.body is None:
            return result
        line = invalid_line(result.body)
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

    def _relay(self, results: Sequence[Scrape]) -> tuple[bytes, set[bytes]]:
        ok = [r for r in results if r.body is not None]
        if len(self._config.upstream_urls) == 1:
            if not ok:
                return b"", set()
            body = ok[0].body or b""
            if not find_prefixes(body, OWN_PREFIXES):
                return body, set()  # the common case: the bytes pass through untouched
            filtered, dropped = drop_families(body, OWN_FAMILIES)
            return (filtered if dropped else body), dropped
        return merge_fanin([(r.upstream, r.body or b"") for r in ok], OWN_FAMILIES)

    def process(self, results: Sequence[Scrape], wall: float, now: float) -> Exposition:
        """One poll's scrapes (in any order) at unix time `wall` and monotonic `now` → the new exposition."""
        checked = [self._check(r) for r in results]
        for result in checked:
            self._record(result, wall)
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
        self._collector.report = Report(self.health, derived, self._version, tuple(sorted(f.decode() for f in dropped)))
        return Exposition(relay, render_own(self._collector))

    def pending(self) -> Exposition:
        """What /metrics shows before the first poll has finished: health only, nothing up yet."""
        collector = OwnCollector(
            self._config.daily_budget_usd
        )  # its own collector: a poll may be rendering in its thread right now
        collector.report = Report({name: Health() for name in self.health}, None, self._version)
        return Exposition(b"", render_own(collector))
