"""Derived values for synthetic traffic at synthetic times: exact, reset-aware, folded, never NaN or Inf."""

from __future__ import annotations

import math
import random

import pytest

from exporter.config import Config, Window
from exporter.derive import Deriver, histogram_quantile
from exporter.prices import Price, Prices
from exporter.scan import scan
from tests.exporter.fake_upstream import exposition

UP = "proxy:8000"
SHARES = (0.1, 0.3, 0.5, 0.7, 0.9, 0.97, 0.99, 1.0, 1.0)


def config(**overrides) -> Config:
    base = {
        "upstream_urls": ("http://proxy:8000/metrics",),
        "poll_interval": 5.0,
        "windows": (Window("10s", 10.0), Window("30s", 30.0)),
        "baseline": 60.0,
    }
    return Config(**{**base, **overrides})


def traffic(requests: float, failure_ratio: float = 0.1, tpr: tuple[float, float] = (30.0, 10.0)) -> dict:
    return {
        "requests": requests,
        "failed": requests * failure_ratio,
        "prompt": requests * tpr[0],
        "completion": requests * tpr[1],
        "buckets": [requests * s for s in SHARES],
    }


def feed(deriver: Deriver, t: float, models: dict | None):
    """One poll at time t; models=None: the upstream failed."""
    return deriver.update({UP: None if models is None else scan(exposition(models))}, t)


def gauge(derived, name: str, model: str, window: str) -> float | None:
    found = [v for labels, v in derived.gauges[name] if labels == (model, window)]
    assert len(found) <= 1
    return found[0] if found else None


def test_exact_values_over_one_window():
    d = Deriver(config())
    feed(d, 0.0, {"gpt-4o": traffic(1000.0)})
    out = feed(d, 10.0, {"gpt-4o": traffic(1100.0)})  # 100 requests in 10 s, 10 failed, 4000 tokens
    assert gauge(out, "llm_request_failure_ratio", "gpt-4o", "10s") == pytest.approx(0.1)
    assert gauge(out, "llm_requests_per_second", "gpt-4o", "10s") == pytest.approx(10.0)
    assert gauge(out, "llm_tokens_per_second", "gpt-4o", "10s") == pytest.approx(400.0)
    assert gauge(out, "llm_tokens_per_request", "gpt-4o", "10s") == pytest.approx(40.0)
    # Bucket deltas 10,30,50,70,90,97,99,100,100 over bounds .1,.25,.5,1,2,5,10,30,+Inf (worked by hand):
    assert gauge(out, "llm_response_latency_p50_seconds", "gpt-4o", "10s") == pytest.approx(0.5)
    assert gauge(out, "llm_response_latency_p95_seconds", "gpt-4o", "10s") == pytest.approx(2 + 3 * 5 / 7)
    assert gauge(out, "llm_response_latency_p99_seconds", "gpt-4o", "10s") == pytest.approx(10.0)
    assert gauge(out, "llm_slow_request_ratio", "gpt-4o", "10s") == pytest.approx(0.1)
    assert out.threshold_not_boundary is False


def test_window_uses_only_its_own_span():
    d = Deriver(config())
    for t, n in ((0, 0.0), (5, 100.0), (10, 200.0), (15, 300.0), (20, 900.0), (25, 1500.0)):
        out = feed(d, float(t), {"m": traffic(n)})
    # 10 s window at t=25: from t=15 (300) to 25 (1500): 120/s; 30 s window: everything since t=0.
    assert gauge(out, "llm_requests_per_second", "m", "10s") == pytest.approx(120.0)
    assert gauge(out, "llm_requests_per_second", "m", "30s") == pytest.approx(1500.0 / 25.0)


def test_counter_reset_counts_the_new_value_and_is_counted():
    d = Deriver(config())
    feed(d, 0.0, {"m": traffic(1000.0)})
    feed(d, 5.0, {"m": traffic(1050.0)})
    out = feed(d, 10.0, {"m": traffic(30.0)})  # the proxy restarted and served 30 since
    assert gauge(out, "llm_requests_per_second", "m", "10s") == pytest.approx((50 + 30) / 10)
    assert gauge(out, "llm_request_failure_ratio", "m", "10s") == pytest.approx(0.1)
    assert out.resets == {UP: 1}
    assert all(v >= 0 for rows in out.gauges.values() for _, v in rows)


def test_no_traffic_no_series():
    d = Deriver(config())
    feed(d, 0.0, {"busy": traffic(10.0), "idle": traffic(5.0)})
    out = feed(d, 10.0, {"busy": traffic(20.0), "idle": traffic(5.0)})
    labels = {labels[0] for rows in out.gauges.values() for labels, _ in rows}
    assert labels == {"busy"}
    single = Deriver(config())
    out = feed(single, 0.0, {"busy": traffic(10.0)})  # one poll: no rate yet
    assert not any(out.gauges.values())


def test_window_without_a_recent_poll_goes_empty():
    d = Deriver(config())
    feed(d, 0.0, {"m": traffic(0.0)})
    feed(d, 5.0, {"m": traffic(50.0)})
    for t in range(10, 60, 5):
        out = feed(d, float(t), None)  # upstream down since
    assert not any(out.gauges.values())


def test_surge_against_the_same_window_a_baseline_earlier():
    d = Deriver(config())
    seen_before_history = []
    count = 0.0
    for t in range(0, 95, 5):
        rate = 30.0 if t > 70 else 10.0
        count += rate * 5 if t else 0.0
        out = feed(d, float(t), {"m": traffic(count)})
        if t < 65:
            seen_before_history.append(gauge(out, "llm_request_surge_ratio", "m", "10s"))
    assert seen_before_history == [None] * len(seen_before_history)  # absent until an hour-equivalent exists
    # At t=90 the 10 s window runs at 30/s; at t=30 (60 s earlier) it ran at 10/s.
    assert gauge(out, "llm_request_surge_ratio", "m", "10s") == pytest.approx(3.0)
    assert gauge(out, "llm_token_surge_ratio", "m", "10s") == pytest.approx(3.0)


def test_surge_absent_while_the_earlier_rate_is_zero():
    d = Deriver(config())
    for t in range(0, 95, 5):
        n = 0.0 if t <= 40 else (t - 40) * 10.0  # traffic starts at t=40
        out = feed(d, float(t), {"m": traffic(n)})
    assert gauge(out, "llm_requests_per_second", "m", "10s") == pytest.approx(10.0)
    assert gauge(out, "llm_request_surge_ratio", "m", "10s") is None  # at t=30 there was no traffic


def test_folding_past_max_series():
    d = Deriver(config(max_series=2))
    models = ["a", "b", "c", "d"]
    feed(d, 0.0, {m: traffic(0.0) for m in models})
    out = feed(d, 10.0, {m: traffic(10.0 * (i + 1)) for i, m in enumerate(models)})
    rows = {labels[0]: v for labels, v in out.gauges["llm_requests_per_second"] if labels[1] == "10s"}
    assert rows == {"a": pytest.approx(1.0), "b": pytest.approx(2.0), "__other__": pytest.approx(3.0 + 4.0)}
    assert out.dropped == 2


def test_slow_ratio_between_boundaries_is_interpolated_and_flagged():
    d = Deriver(config(latency_threshold=1.5))
    feed(d, 0.0, {"m": traffic(0.0)})
    out = feed(d, 10.0, {"m": traffic(100.0)})
    # 70 at or below 1 s, 90 at or below 2 s: 80 below 1.5 s by linear interpolation.
    assert gauge(out, "llm_slow_request_ratio", "m", "10s") == pytest.approx(0.2)
    assert out.threshold_not_boundary is True


def test_cost_from_price_table():
    prices = Prices(models={"gpt-4o": Price(prompt=2.5, completion=10.0)})
    d = Deriver(config(prices=prices))
    feed(d, 0.0, {"gpt-4o": traffic(100.0), "llama": traffic(10.0)})
    out = feed(d, 5.0, {"gpt-4o": traffic(200.0), "llama": traffic(20.0)})
    cost = dict(out.cost)
    assert cost["gpt-4o"] == pytest.approx(100 * 30 * 2.5e-6 + 100 * 10 * 10e-6)
    assert dict(out.unpriced) == {"llama": pytest.approx(10 * 40)}
    out = feed(d, 10.0, {"gpt-4o": traffic(5.0), "llama": traffic(20.0)})  # reset: cost keeps counting up
    assert dict(out.cost)["gpt-4o"] == pytest.approx((100 + 5) * (30 * 2.5e-6 + 10 * 10e-6))


def test_never_nan_or_inf_under_hostile_input():
    rng = random.Random(7)
    d = Deriver(config(prices=Prices(default=Price(1.0, 2.0))))
    values = [0.0, 1.0, 1e300, float("nan"), float("inf"), -5.0]
    for step in range(60):
        body = []
        for model in ("a", "b"):
            for name in ("llm_requests_total", "llm_requests_failed_total"):
                body.append(f'{name}{{model="{model}"}} {rng.choice(values) if rng.random() < 0.3 else step * 3.0}')
            body.append(f'llm_tokens_used_total{{model="{model}",type="prompt"}} {rng.choice(values)}')
            for le in ("0.5", "1.0", "+Inf", "bogus"):
                body.append(f'llm_response_latency_seconds_bucket{{model="{model}",le="{le}"}} {rng.choice(values)}')
        out = d.update({UP: scan(("\n".join(body) + "\n").encode())}, step * 5.0)
        for rows in out.gauges.values():
            assert all(math.isfinite(v) for _, v in rows)
        assert all(math.isfinite(v) for _, v in out.cost)


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        pytest.param(0.5, [(1.0, 10.0), (math.inf, 10.0)], 0.5, id="first-bucket-from-zero"),
        pytest.param(0.5, [(1.0, 0.0), (math.inf, 10.0)], 1.0, id="all-in-inf-gives-highest-finite"),
        pytest.param(0.25, [(-1.0, 5.0), (math.inf, 10.0)], -1.0, id="non-positive-first-bound"),
        pytest.param(0.5, [(1.0, 5.0), (2.0, 4.0), (math.inf, 10.0)], 1.0, id="made-monotonic"),
        pytest.param(0.5, [(2.0, 5.0), (1.0, 2.0), (math.inf, 10.0)], 2.0, id="unsorted"),
        pytest.param(0.5, [(1.0, 5.0), (1.0, 5.0), (3.0, 15.0), (math.inf, 20.0)], 1.0, id="coalesced-equal-bounds"),
        pytest.param(-0.1, [(1.0, 1.0), (math.inf, 1.0)], -math.inf, id="q-below-zero"),
        pytest.param(1.1, [(1.0, 1.0), (math.inf, 1.0)], math.inf, id="q-above-one"),
    ],
)
def test_histogram_quantile_as_promql(q, buckets, expected):
    assert histogram_quantile(q, buckets) == expected


@pytest.mark.parametrize(
    "buckets",
    [
        pytest.param([(1.0, 0.0), (math.inf, 0.0)], id="no-observations"),
        pytest.param([(1.0, 3.0), (2.0, 5.0)], id="no-inf-bucket"),
        pytest.param([(math.inf, 5.0)], id="only-inf"),
        pytest.param([], id="empty"),
    ],
)
def test_histogram_quantile_undefined_is_nan(buckets):
    assert math.isnan(histogram_quantile(0.5, buckets))
