"""The proxy simulator: exposition, auth, scenario switching, exact rates, incidents and the demo timeline."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import math
import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.simulator.app import create_app
from exporter.simulator.config import Settings
from exporter.simulator.formats import get_format
from exporter.simulator.scenarios import (
    BUCKETS,
    DEMO_TIMELINE,
    INCIDENT_MODEL,
    INCIDENT_SCENARIOS,
    MODELS,
    SCENARIO_ALERTS,
    phase_at,
    phases_between,
    traffic,
)
from exporter.simulator.traffic import Simulation

TOKEN = "sim-test-token-1f2e"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HIST = "llm_response_latency_seconds"
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


class FakeClock:
    """A monotonic clock the test moves by hand, in real seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """Samples of an exposition keyed by (name, labels); tolerant of nothing: every line must match."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        assert m, f"unparsable line {line!r}"
        labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def live_text(sim: Simulation) -> str:
    sim.advance()
    return get_format("llm").live(sim.models)


def histogram_quantile(q: float, cumulative: list[float]) -> float:
    """PromQL's histogram_quantile over cumulative bucket counts in BUCKETS order."""
    total = cumulative[-1]
    rank = q * total
    for i, count in enumerate(cumulative):
        if count >= rank:
            if math.isinf(BUCKETS[i]):
                return BUCKETS[i - 1]
            lower = 0.0 if i == 0 else BUCKETS[i - 1]
            below = 0.0 if i == 0 else cumulative[i - 1]
            return lower + (BUCKETS[i] - lower) * (rank - below) / (count - below)
    raise AssertionError("unreachable")


def window(before: dict, after: dict, model: str) -> dict[str, float]:
    """Deltas over a window for one model: requests, failures, tokens, p95 and slow share."""

    def d(name: str, **labels: str) -> float:
        return value(after, name, model=model, **labels) - value(before, name, model=model, **labels)

    requests = d("llm_requests_total")
    cumulative = [d(f"{HIST}_bucket", le=le) for le in ("0.1", "0.25", "0.5", "1", "2", "5", "10", "30", "+Inf")]
    return {
        "requests": requests,
        "failed": sum(d("llm_requests_failed_total", reason=r) for r in ("upstream_error", "rate_limited", "timeout")),
        "tokens": d("llm_tokens_used_total", type="prompt") + d("llm_tokens_used_total", type="completion"),
        "p95": histogram_quantile(0.95, cumulative),
        "slow": (cumulative[-1] - cumulative[4]) / cumulative[-1],
        "count": d(f"{HIST}_count"),
    }


# ---------------------------------------------------------------------------------------------- pure model


def test_counters_follow_the_rates_exactly():
    clock = FakeClock()
    sim = Simulation("steady", speed=1.0, clock=clock)
    clock.now += 600.0
    s = parse(live_text(sim))
    for model in MODELS:
        t = traffic("steady", model)
        requests = t.requests_per_second * 600
        assert value(s, "llm_requests_total", model=model) == pytest.approx(requests, abs=1)
        assert value(s, f"{HIST}_count", model=model) == value(s, "llm_requests_total", model=model)
        assert value(s, "llm_tokens_used_total", model=model, type="prompt") == pytest.approx(
            requests * t.prompt_tokens_per_request, abs=1
        )
        assert value(s, "llm_tokens_used_total", model=model, type="completion") == pytest.approx(
            requests * t.completion_tokens_per_request, abs=1
        )
        for reason, share in t.failure_reasons:
            expected = requests * t.failure_ratio * share
            assert value(s, "llm_requests_failed_total", model=model, reason=reason) == pytest.approx(expected, abs=1)


def test_fractional_accumulators_keep_small_steps_exact():
    # 10 000 reads of 0.01 s each: a rate rounded per read would lose everything; the totals must not.
    clock = FakeClock()
    sim = Simulation("steady", speed=1.0, clock=clock)
    for _ in range(10_000):
        clock.now += 0.01
        sim.advance()
    s = parse(live_text(sim))
    assert value(s, "llm_requests_total", model="gpt-4o") == pytest.approx(4.0 * 100, abs=1)


def test_speed_scales_scenario_time():
    clock = FakeClock()
    sim = Simulation("steady", speed=60.0, clock=clock)
    clock.now += 10.0  # ten real seconds = ten scenario minutes
    assert sim.scenario_seconds() == pytest.approx(600.0)
    s = parse(live_text(sim))
    assert value(s, "llm_requests_total", model="gpt-4o") == pytest.approx(4.0 * 600, abs=1)


def test_counters_are_monotonic_and_buckets_cumulative_across_switches():
    clock = FakeClock()
    sim = Simulation("demo", speed=60.0, clock=clock)
    previous: dict = {}
    for step in range(400):
        clock.now += 0.37
        if step == 150:
            sim.switch("token-surge")
        if step == 250:
            sim.switch("demo")
        s = parse(live_text(sim))
        for key, v in s.items():
            if not key[0].endswith("_sum"):
                assert v == int(v), key
            assert v >= previous.get(key, 0.0), key
        for model in MODELS:
            buckets = [value(s, f"{HIST}_bucket", model=model, le=le) for le in _les()]
            assert buckets == sorted(buckets)
            assert buckets[-1] == value(s, "llm_requests_total", model=model)
        previous = s


def _les() -> list[str]:
    return ["0.1", "0.25", "0.5", "1", "2", "5", "10", "30", "+Inf"]


def _window_after(scenario: str, minutes: float = 10.0) -> dict[str, dict[str, float]]:
    """Per-model deltas over `minutes` of `scenario`, run after a steady stretch."""
    clock = FakeClock()
    sim = Simulation("steady", speed=60.0, clock=clock)
    clock.now += 60.0
    sim.switch(scenario)
    before = parse(live_text(sim))
    clock.now += minutes  # speed 60: one real second per scenario minute
    after = parse(live_text(sim))
    return {model: window(before, after, model) for model in MODELS}


def test_steady_is_healthy_for_every_model():
    for model, w in _window_after("steady").items():
        assert w["failed"] / w["requests"] < 0.05, model
        assert 0.5 <= w["p95"] <= 1.2, model
        assert w["slow"] < 0.02, model


@pytest.mark.parametrize("scenario", INCIDENT_SCENARIOS)
def test_incident_hits_only_the_incident_model(scenario):
    steady = _window_after("steady")
    incident = _window_after(scenario)
    for model in MODELS:
        s, i = steady[model], incident[model]
        hit = model == INCIDENT_MODEL
        failure_ratio = i["failed"] / i["requests"]
        request_surge = i["requests"] / s["requests"]
        token_surge = i["tokens"] / s["tokens"]
        if hit and scenario == "failure-burst":
            assert 0.35 <= failure_ratio <= 0.45
        else:
            assert failure_ratio < 0.05, (model, scenario)
        if hit and scenario == "latency-spike":
            assert i["p95"] > 4.0
            assert i["slow"] > 0.5
        else:
            assert i["p95"] < 1.2, (model, scenario)
        if hit and scenario == "request-surge":
            assert 4.0 <= request_surge <= 5.0
            assert token_surge < 5.0  # the token alert must stay quiet
        else:
            assert request_surge == pytest.approx(1.0, abs=0.01), (model, scenario)
        if hit and scenario == "token-surge":
            assert 6.0 <= token_surge <= 8.0
        elif not (hit and scenario == "request-surge"):
            assert token_surge == pytest.approx(1.0, abs=0.01), (model, scenario)


def test_demo_timeline_shape():
    assert DEMO_TIMELINE[0] == (0, 60, "steady")
    assert math.isinf(DEMO_TIMELINE[-1].end_minute) and DEMO_TIMELINE[-1].scenario == "steady"
    for a, b in itertools.pairwise(DEMO_TIMELINE):
        assert a.end_minute == b.start_minute
    incidents = [s for s in DEMO_TIMELINE if s.scenario != "steady"]
    assert [s.scenario for s in incidents] == list(INCIDENT_SCENARIOS) == list(SCENARIO_ALERTS)
    for seg in DEMO_TIMELINE[1:-1]:
        length = seg.end_minute - seg.start_minute
        assert 10 <= length <= 15 if seg.scenario != "steady" else length >= 10
    assert phase_at("demo", 65) == "failure-burst" and phase_at("demo", 500) == "steady"
    assert list(phases_between("demo", 3540, 3660)) == [("steady", 60.0), ("failure-burst", 60.0)]


def test_demo_conditions_hold_only_during_their_incident():
    """Walk the demo minute by minute with 5m windows: each alert condition is true during its incident
    (once the window is inside it) and never outside it (windows overlapping it excepted)."""
    clock = FakeClock()
    sim = Simulation("demo", speed=60.0, clock=clock)
    snapshots = []
    for _minute in range(0, 260):
        snapshots.append(parse(live_text(sim)))
        clock.now += 1.0
    segments = {s.scenario: s for s in DEMO_TIMELINE if s.scenario != "steady"}

    def overlaps(scenario: str, minute: int) -> bool:
        seg = segments[scenario]
        return minute - 5 < seg.end_minute and minute > seg.start_minute

    def inside(scenario: str, minute: int) -> bool:
        seg = segments[scenario]
        return seg.start_minute + 5 <= minute <= seg.end_minute

    for minute in range(5, 260):
        for model in MODELS:
            now = window(snapshots[minute - 5], snapshots[minute], model)
            conditions = {
                "failure-burst": now["failed"] / now["requests"] > 0.20,
                "latency-spike": now["p95"] > 2.0,
            }
            if minute >= 65:  # the surge compares with the same window an hour earlier
                hour_ago = window(snapshots[minute - 65], snapshots[minute - 60], model)
                conditions["request-surge"] = now["requests"] >= 3 * hour_ago["requests"]
                conditions["token-surge"] = now["tokens"] >= 5 * hour_ago["tokens"]
            for scenario, holds in conditions.items():
                if model != INCIDENT_MODEL or not overlaps(scenario, minute):
                    assert not holds, (scenario, model, minute)
                if model == INCIDENT_MODEL and inside(scenario, minute):
                    assert holds, (scenario, model, minute)


# ----------------------------------------------------------------------------------------------- the app


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
async def client(aiohttp_client, clock):
    return await aiohttp_client(create_app(Settings(token=TOKEN, speed=60.0), clock=clock))


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="no-token"),
        pytest.param({"Authorization": "Bearer wrong"}, id="wrong-token"),
        pytest.param({"Authorization": f"Basic {TOKEN}"}, id="wrong-scheme"),
        pytest.param({"Authorization": f"Bearer {TOKEN}x"}, id="token-prefix"),
    ],
)
async def test_metrics_requires_the_bearer_token(client, headers):
    r = await client.get("/metrics", headers=headers)
    assert r.status == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in await r.text()
    r = await client.post("/scenario", json={"scenario": "demo"}, headers=headers)
    assert r.status == 401


async def test_healthz_and_scenario_state_are_open(client, clock):
    assert (await client.get("/healthz")).status == 200
    clock.now += 2.0
    state = await (await client.get("/scenario")).json()
    assert state["scenario"] == "steady" and state["phase"] == "steady"
    assert state["scenario_seconds"] == pytest.approx(120.0)
    assert state["speed"] == 60.0 and state["incident_model"] == INCIDENT_MODEL


async def test_no_token_configured_leaves_metrics_open(aiohttp_client, caplog):
    client = await aiohttp_client(create_app(Settings(token=None)))
    assert (await client.get("/metrics")).status == 200
    assert any("open" in r.getMessage() for r in caplog.records if r.levelname == "WARNING")


async def test_exposition_is_valid_text_format(client, clock):
    clock.now += 5.0
    r = await client.get("/metrics", headers=AUTH)
    assert r.status == 200
    assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == {"llm_requests", "llm_requests_failed", "llm_tokens_used", HIST}
    assert families[HIST].type == "histogram"
    for name in ("llm_requests", "llm_requests_failed", "llm_tokens_used"):
        assert families[name].type == "counter"
    for family in families.values():
        assert family.documentation
        for sample in family.samples:
            assert sample.labels["model"] in MODELS
    assert {s.labels["type"] for s in families["llm_tokens_used"].samples} == {"prompt", "completion"}
    assert {s.labels["reason"] for s in families["llm_requests_failed"].samples} == {
        "upstream_error",
        "rate_limited",
        "timeout",
    }
    # Each family's HELP and TYPE exactly once, its samples together.
    assert len(re.findall(r"^# TYPE ", text, re.M)) == 4


async def test_buckets_are_exactly_the_listed_bounds(client):
    text = await (await client.get("/metrics", headers=AUTH)).text()
    for model in MODELS:
        les = re.findall(rf'^{HIST}_bucket{{model="{re.escape(model)}",le="([^"]+)"}}', text, re.M)
        assert les == _les()
        assert [float(le) for le in les] == [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, math.inf]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (make test installs it)")
@pytest.mark.parametrize("series", [0, 2200])
async def test_promtool_check_metrics_is_clean(aiohttp_client, clock, series):
    client = await aiohttp_client(create_app(Settings(token=TOKEN, series=series), clock=clock))
    clock.now += 30.0
    body = await (await client.get("/metrics", headers=AUTH)).read()
    done = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == b"" and done.stderr.strip() == b""


async def test_gzip_when_asked_gives_the_same_text(aiohttp_client, clock):
    client = await aiohttp_client(create_app(Settings(token=TOKEN, series=5000), clock=clock))
    clock.now += 3.0
    plain = await (await client.get("/metrics", headers={**AUTH, "Accept-Encoding": "identity"})).read()
    r = await client.get("/metrics", headers={**AUTH, "Accept-Encoding": "gzip"}, auto_decompress=False)
    assert r.headers["Content-Encoding"] == "gzip"
    raw = await r.read()
    assert gzip.decompress(raw) == plain
    # Twice: the cached compressor must not be consumed by the first answer.
    clock.now += 3.0
    r2 = await client.get("/metrics", headers={**AUTH, "Accept-Encoding": "gzip"}, auto_decompress=False)
    again = gzip.decompress(await r2.read())
    assert again != plain and again.startswith(plain[:1000])


@pytest.mark.parametrize("series, label_sets", [(0, 0), (10, 0), (11, 1), (1000, 90), (100_000, 9090)])
async def test_series_padding_counts_series(aiohttp_client, series, label_sets):
    client = await aiohttp_client(create_app(Settings(token=TOKEN, series=series)))
    text = await (await client.get("/metrics", headers=AUTH)).text()
    padded = [line for line in text.splitlines() if 'key="' in line]
    assert len(padded) == label_sets * 11 == series // 11 * 11
    if series == 1000:
        families = {f.name: f for f in text_string_to_metric_families(text)}
        keys = {s.labels.get("key") for s in families[HIST].samples} - {None}
        assert len(keys) == label_sets
        assert {s.labels["model"] for s in families[HIST].samples} == set(MODELS)


async def test_post_scenario_switches_and_rejects_unknown(client, clock):
    r = await client.post("/scenario", json={"scenario": "latency-spike"}, headers=AUTH)
    assert r.status == 200
    state = await r.json()
    assert state["scenario"] == "latency-spike" and state["scenario_seconds"] == 0
    clock.now += 3.0
    assert (await (await client.get("/scenario")).json())["scenario_minutes"] == pytest.approx(3.0)

    r = await client.post("/scenario", json={"scenario": "meteor-strike"}, headers=AUTH)
    assert r.status == 400
    message = await r.text()
    assert "meteor-strike" in message and "failure-burst" in message
    r = await client.post("/scenario", data=b"not json", headers=AUTH)
    assert r.status == 400 and "JSON" in await r.text()
    r = await client.post("/scenario", json=["demo"], headers=AUTH)
    assert r.status == 400
    assert (await (await client.get("/scenario")).json())["scenario"] == "latency-spike"


async def test_switch_changes_traffic_of_the_incident_model(client, clock):
    clock.now += 5.0
    before = parse(await (await client.get("/metrics", headers=AUTH)).text())
    clock.now += 5.0
    steady = parse(await (await client.get("/metrics", headers=AUTH)).text())
    await client.post("/scenario", json={"scenario": "failure-burst"}, headers=AUTH)
    clock.now += 5.0
    burst = parse(await (await client.get("/metrics", headers=AUTH)).text())
    w = window(steady, burst, "gpt-4o")
    assert w["failed"] / w["requests"] == pytest.approx(0.40, abs=0.01)
    w = window(before, steady, "gpt-4o")
    assert w["failed"] / w["requests"] == pytest.approx(0.01, abs=0.005)


async def test_counters_advance_at_scenario_rate_in_real_time(aiohttp_client):
    """With the real clock and speed 600, counters grow 600x faster in real seconds."""
    client = await aiohttp_client(create_app(Settings(token=TOKEN, speed=600.0)))

    async def reading() -> tuple[float, dict, float]:
        t0 = (await (await client.get("/scenario")).json())["scenario_seconds"]
        s = parse(await (await client.get("/metrics", headers=AUTH)).text())
        t1 = (await (await client.get("/scenario")).json())["scenario_seconds"]
        return t0, s, t1

    a0, first, a1 = await reading()
    await asyncio.sleep(0.5)
    b0, second, b1 = await reading()
    for model in MODELS:
        t = traffic("steady", model)
        delta = window(first, second, model)["requests"]
        low = t.requests_per_second * (b0 - a1) - 1
        high = t.requests_per_second * (b1 - a0) + 1
        assert low <= delta <= high, (model, delta, low, high)
        assert delta > 0
