"""Scenario data: per-model traffic profiles, the incidents, and the demo timeline in scenario minutes."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple

__all__ = [
    "BUCKETS",
    "DEMO_TIMELINE",
    "FAILURE_BURST_RATIO",
    "INCIDENT_MODEL",
    "INCIDENT_SCENARIOS",
    "MODELS",
    "REASONS",
    "REQUEST_SURGE_FACTOR",
    "SCENARIOS",
    "SCENARIO_ALERTS",
    "TOKEN_SURGE_FACTOR",
    "Segment",
    "Traffic",
    "phase_at",
    "phases_between",
    "traffic",
]

MODELS: tuple[str, ...] = ("gpt-4o", "claude-3-5-sonnet", "llama-3-70b")
# Every incident hits this one model only, so alerts are per model and the others stay healthy.
INCIDENT_MODEL = "gpt-4o"
REASONS: tuple[str, ...] = ("upstream_error", "rate_limited", "timeout")
# Upper bounds of llm_response_latency_seconds; 2.0 is the latency alert's threshold.
BUCKETS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, math.inf)
# A representative latency per bucket interval, so _sum is deterministic and consistent with the buckets.
BUCKET_MIDPOINTS: tuple[float, ...] = (0.06, 0.18, 0.37, 0.72, 1.4, 3.2, 7.0, 15.0, 40.0)

INCIDENT_SCENARIOS: tuple[str, ...] = ("failure-burst", "latency-spike", "request-surge", "token-surge")
SCENARIOS: tuple[str, ...] = ("steady", *INCIDENT_SCENARIOS, "demo")
# The alert each incident is built to fire (on model INCIDENT_MODEL), for the demo runner and the e2e test.
SCENARIO_ALERTS: dict[str, str] = {
    "failure-burst": "LLMHighFailureRate",
    "latency-spike": "LLMHighLatency",
    "request-surge": "LLMRequestSurge",
    "token-surge": "LLMTokenSurge",
}


@dataclass(frozen=True)
class Traffic:
    """Constant traffic of one model during one phase; rates are per SCENARIO second."""

    requests_per_second: float
    failure_ratio: float
    # (reason, share of failures); shares sum to 1.
    failure_reasons: tuple[tuple[str, float], ...]
    prompt_tokens_per_request: float
    completion_tokens_per_request: float
    # Share of requests falling in each bucket interval (..0.1], (0.1..0.25], ..., (30..+Inf); sums to 1.
    latency_shares: tuple[float, ...]


# Steady latency: p50 ≈ 0.28 s, p95 ≈ 0.91 s, p99 ≈ 1.75 s, 0.5 % slower than 2 s.
_STEADY_LATENCY = (0.15, 0.30, 0.38, 0.145, 0.02, 0.005, 0.0, 0.0, 0.0)
# Latency spike: 72 % in (2, 5]; p50 ≈ 3.0 s, p95 ≈ 4.9 s, 75 % slower than 2 s.
_SPIKE_LATENCY = (0.02, 0.03, 0.05, 0.05, 0.10, 0.72, 0.03, 0.0, 0.0)
_STEADY_REASONS = (("upstream_error", 0.5), ("rate_limited", 0.3), ("timeout", 0.2))
_BURST_REASONS = (("upstream_error", 0.7), ("rate_limited", 0.1), ("timeout", 0.2))

_STEADY: dict[str, Traffic] = {
    "gpt-4o": Traffic(4.0, 0.01, _STEADY_REASONS, 500.0, 250.0, _STEADY_LATENCY),
    "claude-3-5-sonnet": Traffic(2.5, 0.008, _STEADY_REASONS, 700.0, 300.0, _STEADY_LATENCY),
    "llama-3-70b": Traffic(1.5, 0.015, _STEADY_REASONS, 400.0, 200.0, _STEADY_LATENCY),
}
# Factors chosen with margin around the alert thresholds: failure ratio > 20 %, requests >= 3x, tokens >= 5x.
FAILURE_BURST_RATIO = 0.40
REQUEST_SURGE_FACTOR = 4.0  # tokens/s also rise 4x: still below the 5x token alert
TOKEN_SURGE_FACTOR = 7.0  # tokens per request, at an unchanged request rate


def _incident(phase: str, base: Traffic) -> Traffic:
    if phase == "failure-burst":
        return replace(base, failure_ratio=FAILURE_BURST_RATIO, failure_reasons=_BURST_REASONS)
    if phase == "latency-spike":
        return replace(base, latency_shares=_SPIKE_LATENCY)
    if phase == "request-surge":
        return replace(base, requests_per_second=base.requests_per_second * REQUEST_SURGE_FACTOR)
    if phase == "token-surge":
        return replace(
            base,
            prompt_tokens_per_request=base.prompt_tokens_per_request * TOKEN_SURGE_FACTOR,
            completion_tokens_per_request=base.completion_tokens_per_request * TOKEN_SURGE_FACTOR,
        )
    return base


def traffic(phase: str, model: str) -> Traffic:
    """Traffic of `model` during `phase` (a scenario other than demo)."""
    base = _STEADY[model]
    return _incident(phase, base) if model == INCIDENT_MODEL else base


class Segment(NamedTuple):
    """One stretch of the demo: [start_minute, end_minute) of scenario time running `scenario`."""

    start_minute: float
    end_minute: float
    scenario: str


# An hour of steady baseline first, so the surge alerts (rate vs one hour earlier) have a steady history;
# incidents of 12 minutes with 10 steady minutes between them; then steady forever.
DEMO_TIMELINE: tuple[Segment, ...] = (
    Segment(0, 60, "steady"),
    Segment(60, 72, "failure-burst"),
    Segment(72, 82, "steady"),
    Segment(82, 94, "latency-spike"),
    Segment(94, 104, "steady"),
    Segment(104, 116, "request-surge"),
    Segment(116, 126, "steady"),
    Segment(126, 138, "token-surge"),
    Segment(138, math.inf, "steady"),
)


def phase_at(scenario: str, minute: float) -> str:
    """The constant-traffic phase that `scenario` runs at scenario `minute`."""
    if scenario != "demo":
        return scenario
    for seg in DEMO_TIMELINE:
        if seg.start_minute <= minute < seg.end_minute:
            return seg.scenario
    return "steady"


def phases_between(scenario: str, start_s: float, end_s: float) -> Iterator[tuple[str, float]]:
    """Split scenario time [start_s, end_s) (seconds) into (phase, seconds) pieces of constant traffic."""
    if end_s <= start_s:
        return
    if scenario != "demo":
        yield scenario, end_s - start_s
        return
    for seg in DEMO_TIMELINE:
        lo = max(start_s, seg.start_minute * 60.0)
        hi = min(end_s, seg.end_minute * 60.0)
        if hi > lo:
            yield seg.scenario, hi - lo
