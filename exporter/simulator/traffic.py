"""Simulated proxy counters: integrate a scenario's rates over scenario time, render them as text 0.0.4."""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

from exporter.simulator.formats import get_format, series_per_padding_set
from exporter.simulator.scenarios import (
    BUCKET_MIDPOINTS,
    BUCKETS,
    MODELS,
    REASONS,
    SCENARIOS,
    phase_at,
    phases_between,
    traffic,
)

__all__ = ["CONTENT_TYPE", "Exposition", "Simulation"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass
class _Counters:
    """Exact (fractional) totals of one model; the exposition shows them rounded down, like real counts."""

    buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))
    fail_buckets: list[float] = field(default_factory=lambda: [0.0] * len(BUCKETS))  # failed ones, for OTel
    latency_sum: float = 0.0
    failed: dict[str, float] = field(default_factory=lambda: dict.fromkeys(REASONS, 0.0))
    prompt: float = 0.0
    completion: float = 0.0
    # Tokens per request → requests, for the token histograms of OpenTelemetry.
    prompt_per_request: dict[float, float] = field(default_factory=dict)
    completion_per_request: dict[float, float] = field(default_factory=dict)

    def add(self, phase: str, model: str, seconds: float) -> None:
        t = traffic(phase, model)
        requests = t.requests_per_second * seconds
        for i, share in enumerate(t.latency_shares):
            self.buckets[i] += requests * share
            self.fail_buckets[i] += requests * share * t.failure_ratio
            self.latency_sum += requests * share * BUCKET_MIDPOINTS[i]
        for reason, share in t.failure_reasons:
            self.failed[reason] += requests * t.failure_ratio * share
        self.prompt += requests * t.prompt_tokens_per_request
        self.completion += requests * t.completion_tokens_per_request
        for per_request, tokens in (
            (self.prompt_per_request, t.prompt_tokens_per_request),
            (self.completion_per_request, t.completion_tokens_per_request),
        ):
            per_request[tokens] = per_request.get(tokens, 0.0) + requests

    def cumulative(self) -> list[int]:
        """Cumulative bucket counts, rounded down; the last one is the request count."""
        out, running = [], 0.0
        for value in self.buckets:
            running += value
            out.append(math.floor(running))
        return out


class Simulation:
    """The scenario clock and the counters, advanced lazily to "now" whenever they are read."""

    def __init__(self, scenario: str, speed: float, clock: Callable[[], float] = time.monotonic) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        self.speed = speed
        self._clock = clock
        self._scenario = scenario
        self._started = clock()
        self._done = 0.0  # scenario seconds of the current scenario already integrated
        self._models = {model: _Counters() for model in MODELS}

    @property
    def scenario(self) -> str:
        return self._scenario

    @property
    def models(self) -> dict[str, _Counters]:
        """Each model's counters as of the last advance()."""
        return self._models

    def scenario_seconds(self) -> float:
        """Scenario seconds since the current scenario started (the real elapsed time times the speed)."""
        return max(0.0, self._clock() - self._started) * self.speed

    def phase(self) -> str:
        """What the current scenario is doing now (for demo, the timeline's current stretch)."""
        return phase_at(self._scenario, self.scenario_seconds() / 60.0)

    def advance(self) -> None:
        """Integrate the scenario's rates from the last reading up to now."""
        now = self.scenario_seconds()
        for phase, seconds in phases_between(self._scenario, self._done, now):
            for model, counters in self._models.items():
                counters.add(phase, model, seconds)
        self._done = max(self._done, now)

    def switch(self, scenario: str) -> None:
        """Run `scenario` from its minute 0 on; the counters keep counting (they only reset on restart)."""
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}")
        self.advance()
        self._scenario = scenario
        self._started = self._clock()
        self._done = 0.0


class Exposition:
    """The served text: a cached static head (histogram header plus padding), then the live series.

    The head is also gzipped once; a gzip answer copies the compressor as it stood after the head and
    compresses only the live tail, so a 100k-series scrape costs about as much as a tiny one.
    """

    def __init__(self, padding_series: int, fmt: str = "llm") -> None:
        self._format = get_format(fmt)
        self.head = self._format.latency_header.encode() + self._format.padding(padding_series)
        per_set = series_per_padding_set(fmt)
        self.padding_series = padding_series // per_set * per_set
        self._compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip container
        self.head_gz = self._compressor.compress(self.head) + self._compressor.flush(zlib.Z_SYNC_FLUSH)

    def render(self, sim: Simulation, gzip: bool) -> bytes:
        """One complete exposition of `sim` as it stands now; gzipped if asked."""
        sim.advance()
        tail = self._format.live(sim.models).encode()
        if not gzip:
            return self.head + tail
        compressor = self._compressor.copy()
        return self.head_gz + compressor.compress(tail) + compressor.flush()
