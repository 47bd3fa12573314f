"""The sidecar with EXPORTER_MAPPING in front of gateway-shaped upstreams: canonical families served, relay
canonical at 100k series, promtool clean for every source, a mapping that matches nothing, bad mappings."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.config import ConfigError, load_config
from exporter.mapping import resolve_mapping
from exporter.prices import load_prices
from exporter.simulator.traffic import Exposition, Simulation
from tests.exporter.support import AUTH, samples, sidecar_config, value

GATEWAYS = ("litellm", "otel-genai", "vllm", "kong")
CANONICAL = {"llm_requests", "llm_requests_failed", "llm_tokens_used", "llm_response_latency_seconds"}
CANONICAL |= {"llm_time_to_first_token_seconds", "llm_cost_usd"}


class SimBody:
    """The simulator's answer in one format, at a scenario clock the test moves."""

    def __init__(self, fmt: str, scenario: str = "steady", series: int = 0) -> None:
        self.now = 0.0  # real seconds; at speed 60 each is a scenario minute
        self.sim = Simulation(scenario, 60.0, clock=lambda: self.now)
        self.now = 60.0
        self.exposition = Exposition(series, fmt)

    def __call__(self) -> bytes:
        return self.exposition.render(self.sim, gzip=False)


def mapped(upstream, fmt: str, **overrides):
    return sidecar_config(upstream, mapping=resolve_mapping(fmt), **overrides)


def families(text: str) -> set[str]:
    return {f.name for f in text_string_to_metric_families(text)}


async def scrape(client) -> str:
    resp = await client.get("/metrics", headers=AUTH)
    assert resp.status == 200
    return await resp.text()


@pytest.mark.parametrize("fmt", GATEWAYS)
async def test_canonical_and_derived_families_from_each_gateway(upstream, sidecar, fmt):
    body = SimBody(fmt, "failure-burst")
    upstream.body = body
    client, poller = await sidecar(mapped(upstream, fmt))
    body.now += 2.0  # two scenario minutes later
    await asyncio.sleep(0.05)
    await poller.poll_once()
    text = await scrape(client)
    parsed = samples(text)
    assert value(parsed, "llm_requests_total", model="gpt-4o") > 0
    assert value(parsed, "llm_tokens_used_total", model="gpt-4o", type="prompt") > 0
    assert value(parsed, "llm_response_latency_seconds_count", model="gpt-4o") > 0
    assert value(parsed, "llm_requests_per_second", model="gpt-4o", window="2m") > 0
    assert value(parsed, "llm_response_latency_p95_seconds", model="claude-3-5-sonnet", window="2m") < 2
    # One series per model: the keys, users, routes and status codes of the source are summed away.
    assert {k[1] for k in parsed if k[0] == "llm_requests_total"} == {
        frozenset({("model", m)}) for m in ("gpt-4o", "claude-3-5-sonnet", "llama-3-70b")
    }
    ratio = value(parsed, "llm_request_failure_ratio", model="gpt-4o", window="2m")
    missing = value(parsed, "llm_exporter_mapping_missing", family="llm_requests_failed_total")
    if fmt == "kong":
        assert missing == 1.0 and ratio == 0.0  # no failures from Kong: LLMHighFailureRate cannot fire
        assert not any(k[0] == "llm_requests_failed_total" for k in parsed)
    else:
        assert missing is None and ratio == pytest.approx(0.40, abs=0.02)
    # Where the source has them: time to first token, and its own spend.
    ttft = value(parsed, "llm_time_to_first_token_seconds_count", model="gpt-4o")
    assert (ttft is not None) == (fmt != "kong")  # Kong's open-source plugin has no TTFT histogram
    assert (value(parsed, "llm_cost_usd_total", model="gpt-4o") is not None) == (fmt in ("litellm", "kong"))
    # The relayed source families are there too (EXPORTER_RELAY=all).
    assert body.exposition.head.split()[2].decode() in text


async def test_otel_buckets_have_no_bound_at_the_threshold(upstream, sidecar):
    body = SimBody("otel-genai")
    upstream.body = body
    client, poller = await sidecar(mapped(upstream, "otel-genai"))
    body.now += 2.0
    await asyncio.sleep(0.05)
    await poller.poll_once()
    parsed = samples(await scrape(client))
    assert value(parsed, "llm_exporter_threshold_not_bucket_boundary") == 1.0
    assert value(parsed, "llm_response_latency_seconds_bucket", model="gpt-4o", le="2.56") is not None


async def test_canonical_counters_stay_monotonic_when_the_gateway_restarts(upstream, sidecar):
    body = SimBody("litellm")
    upstream.body = body
    client, poller = await sidecar(mapped(upstream, "litellm"))
    before = value(samples(await scrape(client)), "llm_requests_total", model="gpt-4o")
    restarted = SimBody("litellm")  # a fresh process: every series starts again from zero
    restarted.now = 2.0
    upstream.body = restarted
    await poller.poll_once()
    parsed = samples(await scrape(client))
    after = value(parsed, "llm_requests_total", model="gpt-4o")
    assert after > before
    assert value(parsed, "llm_exporter_upstream_resets_total", upstream=upstream.label) == 1.0


async def test_source_spend_wins_and_the_price_file_fills_in(upstream, sidecar, tmp_path):
    body = SimBody("litellm")
    # A model LiteLLM does not price: its spend series is left out of the answer.
    upstream.body = lambda: b"\n".join(
        line for line in body().split(b"\n") if not (line.startswith(b"litellm_spend") and b"llama" in line)
    )
    prices = tmp_path / "prices.yml"
    prices.write_text("models: {llama-3-70b: {prompt: 1000, completion: 1000}, gpt-4o: {prompt: 0, completion: 0}}\n")
    client, poller = await sidecar(mapped(upstream, "litellm", prices=load_prices(prices)))
    body.now += 2.0
    await asyncio.sleep(0.05)
    await poller.poll_once()
    parsed = samples(await scrape(client))
    assert value(parsed, "llm_cost_usd_total", model="gpt-4o") > 0  # LiteLLM's own spend, not the zero price
    assert value(parsed, "llm_cost_usd_total", model="llama-3-70b") > 0  # from the price file


async def test_relay_canonical_at_100k_litellm_series(upstream, sidecar):
    body = SimBody("litellm", series=100_000)
    fixed = body()
    assert fixed.count(b"\n") > 100_000
    upstream.body = fixed
    client, poller = await sidecar(mapped(upstream, "litellm", relay="canonical"))
    upstream.body = body
    body.now += 1.0
    await poller.poll_once()
    text = await scrape(client)
    names = families(text)
    assert "litellm_request_total_latency_metric" not in text
    assert {n for n in names if not n.startswith("llm_exporter_")} <= CANONICAL | {
        "llm_request_failure_ratio",
        "llm_response_latency_p50_seconds",
        "llm_response_latency_p95_seconds",
        "llm_response_latency_p99_seconds",
        "llm_tokens_per_request",
        "llm_requests_per_second",
        "llm_tokens_per_second",
        "llm_slow_request_ratio",
    }
    assert names >= CANONICAL
    assert len(text.splitlines()) < 1000  # a handful of series per model, not 100,000


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (make test installs it)")
@pytest.mark.parametrize("fmt", ["llm", *GATEWAYS])
async def test_promtool_check_metrics_is_clean_for_every_source(upstream, sidecar, fmt):
    body = SimBody(fmt, "failure-burst")
    upstream.body = body
    client, poller = await sidecar(mapped(upstream, fmt, relay="canonical"))
    body.now += 2.0
    await asyncio.sleep(0.05)
    await poller.poll_once()
    text = await scrape(client)
    assert "llm_requests_total" in text
    done = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert done.returncode == 0 and done.stdout == b"" and done.stderr == b"", done.stdout + done.stderr


async def test_a_mapping_that_matches_nothing_is_counted_and_not_ready(upstream, sidecar, caplog):
    upstream.body = SimBody("llm")  # the proxy's own names, sidecar set for vLLM
    client, poller = await sidecar(mapped(upstream, "vllm"))
    await poller.poll_once()
    parsed = samples(await scrape(client))
    assert value(parsed, "llm_exporter_upstream_scrape_errors_total", upstream=upstream.label, reason="mapping") == 2
    assert value(parsed, "llm_exporter_upstream_up", upstream=upstream.label) == 1.0  # the scrape itself worked
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert (await resp.json())["upstreams"][upstream.label] == {"up": True, "mapping_matched": False}
    assert sum("matches nothing" in r.getMessage() for r in caplog.records) == 1  # logged once, not every poll
    upstream.body = SimBody("vllm")
    await poller.poll_once()
    resp = await client.get("/readyz")
    assert resp.status == 200


def test_default_mapping_adds_nothing():
    config = load_config([], {"LLM_PROXY_URL": "http://127.0.0.1:1/metrics"})
    assert config.mapping is None and config.relay == "all"
    config = load_config(["--relay", "canonical"], {"LLM_PROXY_URL": "http://127.0.0.1:1/metrics"})
    assert config.mapping is not None and config.mapping.name == "llm"


@pytest.mark.parametrize(
    "text, key",
    [
        ("description: x\nmodel_label: m\nrequests: []\nfailed: []\ntokens: []\nlatency: []\nextra: 1\n", "extra"),
        ("description: x\nmodel_label: m\nrequests: []\nfailed: []\ntokens: []\n", "latency: missing"),
        (
            "description: x\nmodel_label: m\nrequests: [{series: a_total, unit: seconds}]\n"
            "failed: []\ntokens: []\nlatency: []\n",
            "requests.0.unit: unknown key",
        ),
        (
            "description: x\nmodel_label: m\nrequests: []\nfailed: []\ntokens: [{series: t_total}]\nlatency: []\n",
            "tokens.0: set either type",
        ),
        (
            "description: x\nmodel_label: m\nrequests: []\nfailed: []\ntokens: []\n"
            "latency: [{histogram: h, unit: minutes}]\n",
            "latency.0.unit",
        ),
        (
            "description: x\nmodel_label: m\nrequests: [{series: 'bad name'}]\nfailed: []\ntokens: []\nlatency: []\n",
            "requests.0.series: 'bad name' is not a metric name",
        ),
        ("description: x\nmodel_label: [\n", "invalid YAML"),
    ],
)
def test_bad_mapping_file_names_the_file_and_the_key(tmp_path, text, key):
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(["--mapping", str(path)], {"LLM_PROXY_URL": "http://127.0.0.1:1/metrics"})
    assert str(err.value).startswith(f"EXPORTER_MAPPING: {path}")
    assert key in str(err.value)


def test_bad_mapping_stops_the_process_with_exit_2(tmp_path):
    path = tmp_path / "gateway.yaml"
    path.write_text("description: x\nmodel_label: m\nrequests: []\nfailed: []\ntokens: []\nlatency: []\nfamilies: 1\n")
    env = {**os.environ, "LLM_PROXY_URL": "http://127.0.0.1:1/metrics", "EXPORTER_MAPPING": str(path)}
    done = subprocess.run([sys.executable, "-m", "exporter"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert f"EXPORTER_MAPPING: {path}: families: unknown key" in done.stderr
    env["EXPORTER_MAPPING"] = "portkey"
    done = subprocess.run([sys.executable, "-m", "exporter"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "neither a preset" in done.stderr
    env["EXPORTER_MAPPING"], env["EXPORTER_RELAY"] = "litellm", "some"
    done = subprocess.run([sys.executable, "-m", "exporter"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 2 and "EXPORTER_RELAY" in done.stderr


def test_presets_are_files_in_the_users_schema():
    from exporter.mapping import PRESETS_DIR, load_mapping

    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        assert load_mapping(path) == resolve_mapping(path.stem).mapping == resolve_mapping(str(path)).mapping


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "exporter", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )


def test_mappings_command_lists_the_presets():
    done = _cli("mappings")
    assert done.returncode == 0
    for name in ("llm", "litellm", "otel-genai", "vllm", "kong"):
        assert f"\n{name} " in "\n" + done.stdout
    assert "llm_requests_failed_total" in done.stdout  # what kong has no source for


def test_check_mapping_against_a_saved_exposition(tmp_path):
    saved = tmp_path / "vllm.txt"
    saved.write_bytes(SimBody("vllm", "failure-burst")())
    done = _cli("check-mapping", "vllm", "--against", str(saved))
    assert done.returncode == 0, done.stdout
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.startswith("llm_")}
    assert rows["llm_requests_total"][0] == "12"  # 3 models x 4 finished reasons
    assert rows["llm_requests_failed_total"][0] == "6"  # abort and error
    assert "gpt-4o," in " ".join(rows["llm_requests_total"])
    assert "missing (no series): llm_cost_usd_total" in done.stdout
    done = _cli("check-mapping", "kong", "--against", str(saved))
    assert done.returncode == 1 and "matches nothing" in done.stdout


async def test_check_mapping_against_a_live_url_with_the_proxy_token(upstream, tmp_path):
    upstream.body = SimBody("litellm")
    token = tmp_path / "token"
    token.write_text("upstream-secret\n")
    done = await asyncio.to_thread(
        _cli, "check-mapping", "litellm", "--against", upstream.url, env={"LLM_PROXY_TOKEN_FILE": str(token)}
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "upstream-secret" not in done.stdout


def test_check_mapping_rejects_a_bad_file(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("description: x\n")
    done = _cli("check-mapping", str(path))
    assert done.returncode == 2 and f"{path}: model_label: missing" in done.stdout


def test_relay_canonical_keeps_replace_semantics():
    config = dataclasses.replace(sidecar_config(), relay="canonical")
    assert config.relay == "canonical"
    assert Path(resolve_mapping("llm").name).name == "llm"


def test_docs_write_out_every_preset_as_shipped():
    from exporter.mapping import PRESETS_DIR

    doc = (Path(__file__).resolve().parents[2] / "docs" / "gateways.md").read_text()
    for path in sorted(PRESETS_DIR.glob("*.yaml")):
        assert f"```yaml\n{path.read_text().rstrip()}\n```" in doc, path.name


async def test_fan_in_sums_the_canonical_families_over_upstreams(upstream_factory, sidecar):
    first, second = await upstream_factory(), await upstream_factory()
    body = SimBody("litellm")
    first.body = second.body = body
    config = sidecar_config(first, second, mapping=resolve_mapping("litellm"), group_by=("model", "upstream"))
    client, poller = await sidecar(config)
    single = SimBody("litellm")
    engine_text = single().decode()
    alone = sum(
        float(line.rsplit(" ", 1)[1])
        for line in engine_text.splitlines()
        if line.startswith("litellm_proxy_total_requests_metric_total{") and 'requested_model="gpt-4o"' in line
    )
    parsed = samples(await scrape(client))
    assert value(parsed, "llm_requests_total", model="gpt-4o") == 2 * alone  # one series per model, both summed
    body.now += 2.0
    await asyncio.sleep(0.05)
    await poller.poll_once()
    parsed = samples(await scrape(client))
    for up in (first, second):  # the derived gauges keep the upstream when EXPORTER_GROUP_BY asks for it
        assert value(parsed, "llm_requests_per_second", model="gpt-4o", upstream=up.label, window="2m") > 0


def test_readme_documents_the_settings_and_every_preset():
    from exporter.config import VARIABLES
    from exporter.mapping import preset_names

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for var in VARIABLES:
        assert f"`{var.env}`" in readme and f"`{var.flag}`" in readme, var.env
    for name in ("SIM_FORMAT", "DEMO_FORMAT", "llm_exporter_mapping_missing", 'reason="mapping"'):
        assert name in readme
    gateways = readme.split("### Gateways", 1)[1].split("\n## ", 1)[0]
    for name in preset_names():
        assert f"| `{name}`" in gateways, name


async def test_a_garbled_answer_is_invalid_with_a_mapping_too(upstream, sidecar):
    body = SimBody("litellm")
    upstream.body = body
    client, poller = await sidecar(mapped(upstream, "litellm"))
    before = value(samples(await scrape(client)), "llm_requests_total", model="gpt-4o")
    body.now += 1.0
    upstream.body = lambda: body().replace(b"\n# TYPE litellm_spend", b"\n<html>oops</html>\n# TYPE litellm_spend", 1)
    await poller.poll_once()
    text = await scrape(client)
    parsed = samples(text)
    assert value(parsed, "llm_exporter_upstream_scrape_errors_total", upstream=upstream.label, reason="invalid") == 1
    assert value(parsed, "llm_requests_total", model="gpt-4o") == before  # nothing of it was taken in
    assert "litellm_" not in text  # nor relayed
    upstream.body = body
    await poller.poll_once()
    assert value(samples(await scrape(client)), "llm_requests_total", model="gpt-4o") > before
