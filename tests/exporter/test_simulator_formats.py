"""llm-proxy-sim --format: the same scenario traffic in each gateway's names, labels, units and buckets."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.canonical import Canonical
from exporter.mapping import resolve_mapping
from exporter.simulator.config import ConfigError, load_settings
from exporter.simulator.formats import FORMATS, KONG_BUCKETS, LITELLM_BUCKETS, OTEL_BUCKETS, VLLM_BUCKETS
from exporter.simulator.scenarios import MODELS
from exporter.simulator.traffic import Exposition, Simulation

GATEWAYS = ("litellm", "otel-genai", "vllm", "kong")


def _canonical(fmt: str, scenario: str, minutes: float, series: int = 0):
    """Canonical totals of the simulator's answer in `fmt` after `minutes` of `scenario`."""
    now = [0.0]
    sim = Simulation(scenario, 1.0, clock=lambda: now[0])
    now[0] = minutes * 60
    body = Exposition(series, fmt).render(sim, gzip=False)
    engine = Canonical(resolve_mapping(fmt).mapping)
    engine.ingest(body)
    return engine.totals(), body


@pytest.mark.parametrize("fmt", GATEWAYS)
@pytest.mark.parametrize("scenario", ["steady", "failure-burst", "token-surge"])
def test_each_format_carries_the_same_traffic_as_the_proxys_own(fmt, scenario):
    ours, _ = _canonical("llm", scenario, 30)
    theirs, _ = _canonical(fmt, scenario, 30)
    for model in MODELS:
        requests = ours.counters["requests"][(model,)]
        # Counts are whole numbers per series, rounded down; a source with more series per model loses a few.
        assert theirs.counters["requests"][(model,)] == pytest.approx(requests, abs=10)
        for kind in ("prompt", "completion"):
            assert theirs.counters["tokens"][(model, kind)] == pytest.approx(
                ours.counters["tokens"][(model, kind)], abs=10
            )
        if fmt != "kong":  # Kong has no failure counter per model
            assert theirs.counters["failed"][(model,)] == pytest.approx(ours.counters["failed"][(model,)], abs=10)
        assert theirs.histogram("latency", model)[0][-1][1] == pytest.approx(requests, abs=10)
    assert ("failed" in theirs.counters) == (fmt != "kong")


@pytest.mark.parametrize(
    "fmt, bounds, seconds",
    [
        ("litellm", LITELLM_BUCKETS, 1),
        ("otel-genai", OTEL_BUCKETS, 1),
        ("vllm", VLLM_BUCKETS, 1),
        ("kong", KONG_BUCKETS, 1000),
    ],
)
def test_latency_buckets_are_the_sources_layout_in_its_unit(fmt, bounds, seconds):
    totals, _ = _canonical(fmt, "latency-spike", 10)
    les = [le for le, _ in totals.histogram("latency", "gpt-4o")[0]]
    assert les == [b / seconds for b in bounds] + [float("inf")]
    # The spike's p95 lies between 2 and 5.12 seconds whatever the layout.
    buckets = totals.histogram("latency", "gpt-4o")[0]
    total = buckets[-1][1]
    p95_bucket = next(le for le, count in buckets if count >= 0.95 * total)
    assert 2.0 < p95_bucket <= 5.12


def test_litellm_labels_per_key_and_user_and_the_left_out_total_tokens():
    _, body = _canonical("litellm", "steady", 10)
    text = body.decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {"litellm_proxy_total_requests_metric", "litellm_total_tokens_metric", "litellm_spend_metric"} <= set(
        families
    )
    keys = {s.labels["hashed_api_key"] for s in families["litellm_proxy_total_requests_metric"].samples}
    assert len(keys) == 2
    sample = families["litellm_input_tokens_metric"].samples[0]
    assert {"requested_model", "model", "team", "user", "api_key_alias", "end_user"} <= set(sample.labels)


def test_litellm_padding_is_per_key_and_user_and_never_moves():
    padded, body = _canonical("litellm", "steady", 10, series=38 * 50)
    users = set(re.findall(r'[{,]user="(user-[0-9]+)"', body.decode()))
    assert len(users) == 50

    def extra(minutes: float) -> float:
        with_padding, _ = _canonical("litellm", "steady", minutes, series=38 * 50)
        without, _ = _canonical("litellm", "steady", minutes)
        return with_padding.histogram("latency", "gpt-4o")[0][-1][1] - without.histogram("latency", "gpt-4o")[0][-1][1]

    assert extra(10) == extra(20) > 0  # static: adds to the count, never to a rate
    assert padded.counters["requests"] == _canonical("litellm", "steady", 10)[0].counters["requests"]


def test_otel_failures_carry_error_type_and_cached_tokens_are_served():
    _, body = _canonical("otel-genai", "failure-burst", 10)
    text = body.decode()
    assert 'error_type="_OTHER"' in text
    assert 'gen_ai_token_type="cached_input"' in text


@pytest.mark.parametrize("fmt", FORMATS)
def test_format_flag_and_variable(fmt):
    assert load_settings(["--format", fmt], {}).format == fmt
    assert load_settings([], {"SIM_FORMAT": fmt}).format == fmt


def test_unknown_format_names_the_variable():
    with pytest.raises(ConfigError, match=r"SIM_FORMAT \(--format\).*litellm"):
        load_settings([], {"SIM_FORMAT": "portkey"})
