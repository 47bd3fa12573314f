"""Canonical families from each gateway's exposition: the real samples, and expositions written from the
gateways' documented names, labels, units and buckets (older names too), through resets and extra labels."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from exporter.canonical import Canonical, Totals
from exporter.mapping import resolve_mapping
from exporter.scan import invalid_line

DATA = Path(__file__).parent / "expositions"  # not under a data/ dir: .gitignore leaves those out
INF = math.inf


def exposition_only(text: str) -> bytes:
    """The sample with its lines that are not exposition text ("...", HTTP headers, `$ curl`) dropped."""
    return "".join(line + "\n" for line in text.splitlines() if invalid_line(line.encode()) is None).encode()


def engine(name: str) -> Canonical:
    return Canonical(resolve_mapping(name).mapping)


def counters(totals: Totals, family: str) -> dict[tuple[str, ...], float]:
    return totals.counters.get(family, {})


# -- the real samples ----------------------------------------------------------------------------------------


def test_envoy_ai_gateway_sample():
    c = engine("otel-genai")
    assert c.ingest(exposition_only((DATA / "envoyproxy_ai-gateway_admin_test_expected.txt").read_text())) > 0
    t = c.totals()
    model = "qwen2.5:0.5b"
    assert counters(t, "requests") == {(model,): 1.0}
    assert counters(t, "failed") == {(model,): 0.0}  # no error_type: nothing failed
    assert counters(t, "tokens") == {(model, "prompt"): 44.0, (model, "completion"): 14.0}
    assert t.histogram("latency", model) == ([(INF, 1.0)], pytest.approx(10.808095311))


def test_vllm_design_sample():
    c = engine("vllm")
    c.ingest(exposition_only((DATA / "vllm-project_vllm_docs-design-metrics.txt").read_text()))
    t = c.totals()
    model = "meta-llama/Llama-3.1-8B-Instruct"
    assert counters(t, "requests") == {(model,): 132.0}  # stop 1 + length 131 + abort 0
    assert counters(t, "failed") == {(model,): 0.0}  # abort 0
    # The sample elides vllm:prompt_tokens_total: only completion tokens are there.
    assert counters(t, "tokens") == {(model, "completion"): 27453.0}
    buckets, _ = t.histogram("time_to_first_token", model)
    assert buckets == [
        (0.001, 0.0),
        (0.005, 0.0),
        (0.01, 0.0),
        (0.02, 13.0),
        (0.04, 97.0),
        (0.06, 123.0),
        (0.08, 138.0),
        (0.1, 140.0),
        (INF, 140.0),
    ]


def test_vllm_usage_sample_has_none_of_the_mapped_families():
    c = engine("vllm")
    assert c.ingest(exposition_only((DATA / "vllm-project_vllm_docs-usage-metrics.txt").read_text())) == 0
    assert c.totals().counters == {}


def test_kong_policy_sample():
    c = engine("kong")
    c.ingest(exposition_only((DATA / "Kong_developer.konghq.com_ai-gateway-policy-prometheus.txt").read_text()))
    t = c.totals()
    assert counters(t, "requests") == {("gpt-4o",): 1.0}
    assert "failed" not in t.counters  # Kong has no failure counter per model
    assert counters(t, "tokens") == {("gpt-4o", "prompt"): 13.0, ("gpt-4o", "completion"): 12.0}  # not total_tokens
    # Milliseconds → seconds: bounds 1500 and 2000 ms, sum 1029 ms.
    assert t.histogram("latency", "gpt-4o") == ([(1.5, 1.0), (2.0, 1.0), (INF, 1.0)], pytest.approx(1.029))
    assert t.histogram("time_to_first_token", "gpt-4o")[0] == [(1.5, 1.0), (2.0, 1.0), (INF, 1.0)]


def test_kong_monitoring_doc_sample_without_prefix():
    c = engine("kong")
    c.ingest(exposition_only((DATA / "Kong_developer.konghq.com_monitor-ai-llm-metrics.txt").read_text()))
    t = c.totals()
    assert counters(t, "requests") == {("model1",): 100.0}
    assert counters(t, "tokens") == {("model1", "prompt"): 1000.0, ("model1", "completion"): 2000.0}
    assert counters(t, "cost") == {("model1",): 50.0}
    assert t.histogram("latency", "model1")[0] == [(INF, 2.0)]


# -- written from the reference -----------------------------------------------------------------------------


def hist(name: str, labels: str, bounds: tuple[float, ...], observations: list[float], sum_value: float) -> str:
    """A histogram's lines as a client library writes them, from observations in the source's unit."""
    out = []
    for bound in (*bounds, INF):
        le = "+Inf" if bound == INF else f"{bound}"
        out.append(f'{name}_bucket{{{labels},le="{le}"}} {sum(1 for o in observations if o <= bound)}.0')
    out.append(f"{name}_count{{{labels}}} {len(observations)}.0")
    out.append(f"{name}_sum{{{labels}}} {sum_value}")
    return "\n".join(out)


LITELLM_BUCKETS = (0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, *[x / 2 for x in range(2, 21)], 15, 20, 25, 30, 60)
LITELLM_BUCKETS += (120, 180, 240, 300)


def litellm(key2_requests: float, key1_requests: float, old_token_names: bool = False) -> bytes:
    """LiteLLM: two keys on model group gpt-4o, one on claude; per-key, per-user, per-route labels."""
    key1 = (
        'api_key_alias="team-a-key",end_user="None",hashed_api_key="88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539",'
        'model_id="m-1",requested_model="gpt-4o",route="/chat/completions",team="t-1",team_alias="team-a",'
        'user="u-1",user_email="a@example.com"'
    )
    key2 = key1.replace("88dc28", "77ab10").replace('user="u-1"', 'user="u-2"')
    claude = key1.replace('requested_model="gpt-4o"', 'requested_model="claude-3-5-sonnet"')
    tokens_in, tokens_out = (
        ("litellm_input_tokens_total", "litellm_output_tokens_total")
        if old_token_names
        else ("litellm_input_tokens_metric_total", "litellm_output_tokens_metric_total")
    )
    total = "litellm_total_tokens_total" if old_token_names else "litellm_total_tokens_metric_total"
    deployment = ',model="azure/gpt-4o-2024-08-06"'
    text = f"""# HELP litellm_proxy_total_requests_metric_total Total number of requests made to the proxy server
# TYPE litellm_proxy_total_requests_metric_total counter
litellm_proxy_total_requests_metric_total{{{key1},status_code="200"}} {key1_requests}
litellm_proxy_total_requests_metric_total{{{key1},status_code="429"}} 5.0
litellm_proxy_total_requests_metric_total{{{key2},status_code="200"}} {key2_requests}
litellm_proxy_total_requests_metric_total{{{claude},status_code="200"}} 40.0
litellm_proxy_total_requests_metric_created{{{key1},status_code="200"}} 1.7640e+09
# HELP litellm_proxy_failed_requests_metric_total Total number of failed responses from proxy
# TYPE litellm_proxy_failed_requests_metric_total counter
litellm_proxy_failed_requests_metric_total{{{key1},exception_status="429",exception_class="Openai.RateLimitError"}} 5.0
# HELP {tokens_in} Total number of input tokens from LLM requests
# TYPE {tokens_in} counter
{tokens_in}{{{key1}{deployment}}} 9000.0
{tokens_in}{{{key2}{deployment}}} 1000.0
{tokens_in}{{{claude},model="claude-3-5-sonnet"}} 4000.0
# TYPE {tokens_out} counter
{tokens_out}{{{key1}{deployment}}} 3000.0
{tokens_out}{{{key2}{deployment}}} 500.0
{tokens_out}{{{claude},model="claude-3-5-sonnet"}} 2000.0
# TYPE {total} counter
{total}{{{key1}{deployment}}} 12000.0
# HELP litellm_request_total_latency_metric Total latency (seconds) for a request to LiteLLM
# TYPE litellm_request_total_latency_metric histogram
{hist("litellm_request_total_latency_metric", key1 + deployment, LITELLM_BUCKETS, [0.3, 0.7, 1.2, 2.4], 4.6)}
{hist("litellm_request_total_latency_metric", key2 + deployment, LITELLM_BUCKETS, [0.4, 9.0], 9.4)}
# TYPE litellm_spend_metric_total counter
litellm_spend_metric_total{{end_user="None",hashed_api_key="88dc28",model="gpt-4o",team="t-1",user="u-1"}} 1.25
litellm_spend_metric_total{{end_user="None",hashed_api_key="77ab10",model="gpt-4o",team="t-1",user="u-2"}} 0.25
# TYPE litellm_deployment_state gauge
litellm_deployment_state{{api_base="https://api.openai.com",api_provider="openai"}} 0.0
"""
    return text.encode()


def test_litellm_sums_away_keys_users_and_status_codes():
    c = engine("litellm")
    c.ingest(litellm(key2_requests=10.0, key1_requests=90.0))
    t = c.totals()
    assert counters(t, "requests") == {("gpt-4o",): 105.0, ("claude-3-5-sonnet",): 40.0}
    assert counters(t, "failed") == {("gpt-4o",): 5.0, ("claude-3-5-sonnet",): 0.0}
    # litellm_total_tokens_* is prompt + completion: not counted again.
    assert counters(t, "tokens") == {
        ("gpt-4o", "prompt"): 10000.0,
        ("gpt-4o", "completion"): 3500.0,
        ("claude-3-5-sonnet", "prompt"): 4000.0,
        ("claude-3-5-sonnet", "completion"): 2000.0,
    }
    assert counters(t, "cost") == {("gpt-4o",): 1.5}
    buckets, total = t.histogram("latency", "gpt-4o")
    by_le = dict(buckets)
    assert (by_le[0.5], by_le[1.0], by_le[2.0], by_le[2.5], by_le[10.0], by_le[INF]) == (2, 3, 4, 5, 6, 6)
    assert total == pytest.approx(14.0)


def test_litellm_older_token_names():
    c = engine("litellm")
    c.ingest(litellm(10.0, 90.0, old_token_names=True))
    assert counters(c.totals(), "tokens")[("gpt-4o", "prompt")] == 10000.0


def test_a_reset_of_one_source_series_keeps_the_canonical_counter_monotonic():
    c = engine("litellm")
    c.ingest(litellm(key2_requests=10.0, key1_requests=90.0))
    # The second key's series restarts (a LiteLLM worker restarted) at 3 while the first moves on by 10.
    c.ingest(litellm(key2_requests=3.0, key1_requests=100.0))
    assert counters(c.totals(), "requests")[("gpt-4o",)] == 105.0 + 10.0 + 3.0
    assert c.resets == 1
    c.ingest(litellm(key2_requests=4.0, key1_requests=100.0))
    assert counters(c.totals(), "requests")[("gpt-4o",)] == 119.0
    assert c.resets == 1


OTEL_BUCKETS = tuple(0.01 * 2**n for n in range(14))  # 0.01 … 81.92: no 2.0 bound
TOKEN_BUCKETS = tuple(4**n for n in range(14))


def envoy(
    ok: int, failed: int, old_token_name: bool = False, with_total: bool = False, system_label: bool = False
) -> bytes:
    """Envoy AI Gateway / OTel GenAI: server duration (failures with error_type="_OTHER"), token usage."""
    provider = "gen_ai_system_name" if system_label else "gen_ai_provider_name"
    base = (
        f'gen_ai_operation_name="chat",gen_ai_original_model="gpt-4o",{provider}="openai",'
        'gen_ai_request_model="gpt-4o",gen_ai_response_model="gpt-4o-2024-08-06",'
        'otel_scope_name="envoyproxy/ai-gateway",otel_scope_schema_url="",otel_scope_version=""'
    )
    embeddings = base.replace('"chat"', '"embeddings"').replace(
        'gen_ai_request_model="gpt-4o"', 'gen_ai_request_model="text-embedding-3-small"'
    )
    usage = "gen_ai_client_token_usage_token" if old_token_name else "gen_ai_client_token_usage"
    lines = [
        "# TYPE gen_ai_server_request_duration_seconds histogram",
        hist("gen_ai_server_request_duration_seconds", base, OTEL_BUCKETS, [0.5] * ok, 0.5 * ok),
        hist(
            "gen_ai_server_request_duration_seconds",
            base + ',error_type="_OTHER"',
            OTEL_BUCKETS,
            [3.0] * failed,
            3.0 * failed,
        ),
        hist("gen_ai_server_request_duration_seconds", embeddings, OTEL_BUCKETS, [0.05] * 7, 0.35),
        f"# TYPE {usage} histogram",
    ]
    types = {"input": 500, "output": 200, "cached_input": 300, "cache_creation_input": 50, "reasoning": 80}
    if with_total:
        types["total"] = 700
    for kind, per_request in types.items():
        labels = f'{base},gen_ai_token_type="{kind}"'
        lines.append(hist(usage, labels, TOKEN_BUCKETS, [per_request] * ok, per_request * ok))
    lines += [
        "# TYPE gen_ai_server_time_to_first_token_seconds histogram",
        hist(
            "gen_ai_server_time_to_first_token_seconds", base, (0.001, 0.01, 0.1, 1.0, 10.0, 60.0), [0.2] * ok, 0.2 * ok
        ),
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    "variant",
    [{}, {"old_token_name": True, "with_total": True, "system_label": True}],
    ids=["v0.5+", "v0.2-v0.4"],
)
def test_envoy_ai_gateway_and_otel_genai(variant):
    c = engine("otel-genai")
    c.ingest(envoy(ok=30, failed=10, **variant))
    t = c.totals()
    assert counters(t, "requests") == {("gpt-4o",): 40.0, ("text-embedding-3-small",): 7.0}
    assert counters(t, "failed") == {("gpt-4o",): 10.0, ("text-embedding-3-small",): 0.0}
    # input/output only: cached_input, cache_creation_input, reasoning and total are left out.
    assert counters(t, "tokens") == {("gpt-4o", "prompt"): 15000.0, ("gpt-4o", "completion"): 6000.0}
    buckets, total = t.histogram("latency", "gpt-4o")
    assert 2.0 not in dict(buckets)  # 1.28 and 2.56 around the latency threshold
    assert (dict(buckets)[1.28], dict(buckets)[2.56], dict(buckets)[5.12], dict(buckets)[INF]) == (30, 30, 40, 40)
    assert total == pytest.approx(45.0)
    assert t.histogram("time_to_first_token", "gpt-4o")[0][-1] == (INF, 30.0)
    # Failures then double while successes go on.
    c.ingest(envoy(ok=35, failed=20, **variant))
    assert counters(c.totals(), "failed")[("gpt-4o",)] == 20.0
    assert counters(c.totals(), "requests")[("gpt-4o",)] == 55.0


VLLM_BUCKETS = (0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680)


def vllm(stop: float, abort: float, engine_label: bool = True) -> bytes:
    model = 'engine="0",model_name="meta-llama/Llama-3.1-8B-Instruct"' if engine_label else 'model_name="m"'
    return f"""# TYPE vllm:request_success_total counter
vllm:request_success_total{{{model},finished_reason="stop"}} {stop}
vllm:request_success_total{{{model},finished_reason="length"}} 20.0
vllm:request_success_total{{{model},finished_reason="abort"}} {abort}
vllm:request_success_total{{{model},finished_reason="error"}} 2.0
vllm:request_success_created{{{model},finished_reason="stop"}} 1.764e+09
# TYPE vllm:prompt_tokens_total counter
vllm:prompt_tokens_total{{{model}}} 50000.0
# TYPE vllm:generation_tokens_total counter
vllm:generation_tokens_total{{{model}}} 12000.0
# TYPE vllm:e2e_request_latency_seconds histogram
{hist("vllm:e2e_request_latency_seconds", model, VLLM_BUCKETS, [0.4, 1.8, 1.9, 2.2], 6.3)}
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{{{model}}} 8.0
""".encode()


def test_vllm_finished_reasons_and_a_whole_engine_restart():
    c = engine("vllm")
    c.ingest(vllm(stop=100.0, abort=3.0))
    t = c.totals()
    model = "meta-llama/Llama-3.1-8B-Instruct"
    assert counters(t, "requests") == {(model,): 125.0}
    assert counters(t, "failed") == {(model,): 5.0}  # abort 3 + error 2
    assert counters(t, "tokens") == {(model, "prompt"): 50000.0, (model, "completion"): 12000.0}
    assert dict(t.histogram("latency", model)[0])[2.0] == 3
    # vLLM restarts: every series starts again, lower. The canonical counters go on from where they were.
    c.ingest(vllm(stop=1.0, abort=0.0).replace(b" 20.0", b" 0.0").replace(b" 2.0\n", b" 0.0\n"))
    assert counters(c.totals(), "requests")[(model,)] == 126.0
    assert counters(c.totals(), "failed")[(model,)] == 5.0


KONG_BUCKETS = (250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 10000, 30000, 60000)


def kong(requests: float) -> bytes:
    common = (
        'ai_provider="openai",ai_model="gpt-4o",cache_status="",vector_db="",embeddings_provider="",'
        'embeddings_model="",workspace="default",consumer="c-1"'
    )
    other = common.replace('consumer="c-1"', 'consumer="c-2"')
    observed = [300, 1900, 2100, 70000]  # milliseconds
    return f"""# TYPE kong_ai_llm_requests_total counter
kong_ai_llm_requests_total{{{common},request_mode="oneshot"}} {requests}
kong_ai_llm_requests_total{{{other},request_mode="stream"}} 4
# TYPE kong_ai_llm_tokens_total counter
kong_ai_llm_tokens_total{{{common},token_type="prompt_tokens"}} 1300
kong_ai_llm_tokens_total{{{common},token_type="completion_tokens"}} 1200
kong_ai_llm_tokens_total{{{common},token_type="total_tokens"}} 2500
# TYPE kong_ai_llm_cost_total counter
kong_ai_llm_cost_total{{{common}}} 0.0155
# TYPE kong_ai_llm_provider_latency_ms histogram
{hist("kong_ai_llm_provider_latency_ms", common + ',request_mode="oneshot"', KONG_BUCKETS, observed, 74300)}
# TYPE kong_http_requests_total counter
kong_http_requests_total{{service="ai",route="chat",code="500",source="upstream",workspace="default",consumer=""}} 3
""".encode()


def test_kong_milliseconds_and_no_failure_counter():
    c = engine("kong")
    c.ingest(kong(10))
    t = c.totals()
    assert counters(t, "requests") == {("gpt-4o",): 14.0}
    assert "failed" not in t.counters
    assert counters(t, "tokens") == {("gpt-4o", "prompt"): 1300.0, ("gpt-4o", "completion"): 1200.0}
    assert counters(t, "cost") == {("gpt-4o",): 0.0155}
    buckets, total = t.histogram("latency", "gpt-4o")
    assert buckets[0] == (0.25, 0) and dict(buckets)[2.0] == 2 and dict(buckets)[60.0] == 3 and buckets[-1] == (INF, 4)
    assert total == pytest.approx(74.3)
    assert resolve_mapping("kong").mapping.missing() == ("llm_requests_failed_total",)


def test_llm_identity_mapping_sums_away_reason_and_extra_labels():
    from tests.exporter.fake_upstream import exposition

    c = engine("llm")
    body = exposition({"gpt-4o": {"requests": 10, "failed": 2, "prompt": 300, "completion": 100, "buckets": [1] * 9}})
    c.ingest(body.replace(b'model="gpt-4o"', b'model="gpt-4o",key="k1"'))
    t = c.totals()
    assert counters(t, "requests") == {("gpt-4o",): 10.0}
    assert counters(t, "failed") == {("gpt-4o",): 2.0}
    assert counters(t, "tokens") == {("gpt-4o", "prompt"): 300.0, ("gpt-4o", "completion"): 100.0}


def test_models_past_max_series_fold_into_other():
    c = Canonical(resolve_mapping("litellm").mapping, max_series=1)
    c.ingest(litellm(10.0, 90.0))
    assert set(counters(c.totals(), "requests")) == {("gpt-4o",), ("__other__",)}
    assert c.dropped == {"claude-3-5-sonnet"}


@pytest.mark.parametrize(
    "name, body, line_start",
    [
        ("litellm", lambda: litellm(10.0, 90.0), b"litellm_proxy_total_requests_metric_total{"),
        ("otel-genai", lambda: envoy(ok=30, failed=10), b"gen_ai_server_request_duration_seconds_count{"),
        (
            "otel-genai",
            lambda: envoy(30, 10, old_token_name=True, with_total=True, system_label=True),
            b"gen_ai_server_request_duration_seconds_count{",
        ),
        ("vllm", lambda: vllm(stop=100.0, abort=3.0), b"vllm:request_success_total{"),
        ("kong", lambda: kong(10), b"kong_ai_llm_requests_total{"),
    ],
)
def test_every_source_a_reset_of_one_series_adds_its_new_value(name, body, line_start):
    c = engine(name)
    first = body()
    c.ingest(first)
    before = dict(counters(c.totals(), "requests"))
    lines = first.split(b"\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(line_start))
    series, old = lines[index].rsplit(b" ", 1)
    assert float(old) > 1
    lines[index] = series + b" 1"  # this one series restarted and has counted one request since
    c.ingest(b"\n".join(lines))
    after = counters(c.totals(), "requests")
    assert sum(after.values()) == sum(before.values()) + 1
    assert all(after[model] >= value for model, value in before.items())
    assert c.resets == 1


@pytest.mark.parametrize("sample", sorted(p.name for p in DATA.glob("*.txt")))
def test_the_changed_lines_check_agrees_with_the_whole_body_check(sample):
    raw = (DATA / sample).read_bytes()  # "...", `$ curl` and HTTP header lines are not exposition text
    assert engine("kong").invalid_line(raw) == invalid_line(raw)
    clean = exposition_only(raw.decode())
    c = engine("kong")
    assert c.invalid_line(clean) is None
    c.ingest(clean)
    # A later answer with one garbled line among unchanged ones: found, at its line number.
    lines = clean.split(b"\n")
    lines.insert(3, b"<html>upstream error</html>")
    broken = b"\n".join(lines)
    assert c.invalid_line(broken) == invalid_line(broken) == 4
    assert c.invalid_line(clean) is None  # the garbled answer was not taken in
