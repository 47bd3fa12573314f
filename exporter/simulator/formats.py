"""The simulated traffic in each gateway's names, labels, units and bucket layout (LiteLLM, OTel GenAI, vLLM, Kong)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from exporter.simulator.scenarios import BUCKET_MIDPOINTS, BUCKETS, MODELS, REASONS

__all__ = ["FORMATS", "PRICES", "Counts", "Format", "cumulative_at", "get_format", "le_text"]

INF = math.inf
# USD per 1M prompt / completion tokens: the spend LiteLLM and Kong report.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "claude-3-5-sonnet": (3.00, 15.00),
    "llama-3-70b": (0.90, 0.90),
}
_PROVIDERS = {"gpt-4o": "openai", "claude-3-5-sonnet": "anthropic", "llama-3-70b": "meta"}
# The latency the open last interval (30 s, +Inf) stands for, as the llm format's _sum does.
_OPEN_END = 40.0
_TTFT_SHARE = 0.25  # the first token arrives after a quarter of the response time
_TTFT_READ = 1 / _TTFT_SHARE  # time to first token <= b  ⇔  latency <= b / share


class Counts(Protocol):
    """What a format reads of one model's counters (exporter.simulator.traffic keeps them)."""

    buckets: list[float]  # requests per latency interval of BUCKETS, failed ones included
    fail_buckets: list[float]  # failed requests per latency interval
    latency_sum: float
    failed: dict[str, float]  # by reason
    prompt: float
    completion: float
    prompt_per_request: dict[float, float]  # tokens per request → requests, for token histograms
    completion_per_request: dict[float, float]

    def cumulative(self) -> list[int]:
        """Cumulative bucket counts, rounded down; the last one is the request count."""
        ...


def le_text(bound: float) -> str:
    """The `le` label value of a bucket bound: 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, +Inf."""
    return "+Inf" if math.isinf(bound) else f"{bound:g}"


def cumulative_at(intervals: Sequence[float], bound: float) -> float:
    """Requests at or below `bound`, spreading each interval of BUCKETS evenly over its width."""
    total, lower = 0.0, 0.0
    for upper, count in zip(BUCKETS, intervals, strict=True):
        if upper == INF:
            return total + (count if bound >= _OPEN_END else 0.0)
        if bound >= upper:
            total += count
        else:
            if bound > lower:
                total += count * (bound - lower) / (upper - lower)
            return total
        lower = upper
    return total


def _le(bound: float) -> str:
    return "+Inf" if bound == INF else f"{bound:g}" if bound >= 1 and bound == int(bound) else repr(bound)


def _hist_lines(
    name: str, labels: str, intervals: Sequence[float], bounds: Sequence[float], sum_value: float, read: float = 1.0
) -> list[str]:
    """A histogram's bucket, _sum and _count lines. A bound b counts the requests whose latency is at most
    b * `read` seconds: 0.001 for a histogram in milliseconds, 1 / _TTFT_SHARE for time to first token."""
    out = []
    count = math.floor(sum(intervals))
    for bound in bounds:
        value = math.floor(cumulative_at(intervals, bound * read))
        out.append(f'{name}_bucket{{{labels},le="{_le(bound)}"}} {value}\n')
    out.append(f'{name}_bucket{{{labels},le="+Inf"}} {count}\n')
    out.append(f"{name}_sum{{{labels}}} {sum_value:.3f}\n")
    out.append(f"{name}_count{{{labels}}} {count}\n")
    return out


def _token_hist_lines(name: str, labels: str, per_request: Mapping[float, float], bounds: Sequence[float]) -> list[str]:
    out = []
    count = math.floor(sum(per_request.values()))
    for bound in bounds:
        value = math.floor(sum(n for tokens, n in per_request.items() if tokens <= bound))
        out.append(f'{name}_bucket{{{labels},le="{_le(bound)}"}} {value}\n')
    out.append(f'{name}_bucket{{{labels},le="+Inf"}} {count}\n')
    out.append(f"{name}_sum{{{labels}}} {math.floor(sum(t * n for t, n in per_request.items()))}\n")
    out.append(f"{name}_count{{{labels}}} {count}\n")
    return out


def _ok(c: Counts) -> list[float]:
    return [a - f for a, f in zip(c.buckets, c.fail_buckets, strict=True)]


def _header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def _spend(model: str, c: Counts) -> float:
    prompt, completion = PRICES[model]
    return (c.prompt * prompt + c.completion * completion) / 1e6


@dataclass(frozen=True)
class Format:
    """One source's shape: the latency family's header, its static padding, and the live text."""

    name: str
    latency_header: str
    padding: Callable[[int], bytes]
    live: Callable[[Mapping[str, Counts]], str]  # starts with the latency family's lines (no header)


# -- llm: the proxy's own four families ------------------------------------------------------------------------

_LLM_HIST = "llm_response_latency_seconds"


_OTHER_HEADERS = {
    "llm_requests_total": "Requests handled by the proxy, failed ones included.",
    "llm_requests_failed_total": "Requests that failed, by reason.",
    "llm_tokens_used_total": "Tokens used, by type (prompt or completion).",
}


def _llm_histogram_lines(models: Mapping[str, Counts]) -> str:
    lines = []
    for model, c in models.items():
        cum = c.cumulative()
        for bound, value in zip(BUCKETS, cum, strict=True):
            lines.append(f'{_LLM_HIST}_bucket{{model="{model}",le="{le_text(bound)}"}} {value}\n')
        lines.append(f'{_LLM_HIST}_sum{{model="{model}"}} {c.latency_sum:.3f}\n')
        lines.append(f'{_LLM_HIST}_count{{model="{model}"}} {cum[-1]}\n')
    return "".join(lines)


def _llm_counter_families(models: Mapping[str, Counts]) -> str:
    out = []
    for name, help_text in _OTHER_HEADERS.items():
        out.append(f"# HELP {name} {help_text}\n# TYPE {name} counter\n")
        for model, c in models.items():
            if name == "llm_requests_total":
                out.append(f'{name}{{model="{model}"}} {c.cumulative()[-1]}\n')
            elif name == "llm_requests_failed_total":
                for reason in REASONS:
                    out.append(f'{name}{{model="{model}",reason="{reason}"}} {math.floor(c.failed[reason])}\n')
            else:
                out.append(f'{name}{{model="{model}",type="prompt"}} {math.floor(c.prompt)}\n')
                out.append(f'{name}{{model="{model}",type="completion"}} {math.floor(c.completion)}\n')
    return "".join(out)


def _llm_live(models: Mapping[str, Counts]) -> str:
    """The llm format's live text: the latency histogram's series, then the three counter families."""
    return _llm_histogram_lines(models) + _llm_counter_families(models)


def _llm_padding(series: int) -> bytes:
    """Static extra series of the latency histogram: series // 11 label sets (9 buckets, _sum, _count) each."""
    label_sets = series // (len(BUCKETS) + 2)
    per_mille = (150, 300, 380, 145, 20, 5, 0, 0, 0)  # the steady latency shape, in integers so buckets are exact
    les = [le_text(b) for b in BUCKETS]
    parts: list[str] = []
    for i in range(label_sets):
        labels = f'model="{MODELS[i % len(MODELS)]}",key="k{i:06d}"'
        total = 50 + (i * 7919) % 950  # deterministic spread of counts across keys
        cumulative, latency_sum = 0, 0.0
        for le, share, mid in zip(les, per_mille, BUCKET_MIDPOINTS, strict=True):
            cumulative += share
            latency_sum += total * share / 1000 * mid
            parts.append(f'{_LLM_HIST}_bucket{{{labels},le="{le}"}} {total * cumulative // 1000}\n')
        parts.append(f"{_LLM_HIST}_sum{{{labels}}} {latency_sum:.3f}\n{_LLM_HIST}_count{{{labels}}} {total}\n")
    return "".join(parts).encode()


# -- LiteLLM ---------------------------------------------------------------------------------------------------

LITELLM_BUCKETS = (0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, *(x / 2 for x in range(2, 21)))
LITELLM_BUCKETS += (15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0)
_LITELLM_HIST = "litellm_request_total_latency_metric"
_LITELLM_TTFT = "litellm_llm_api_time_to_first_token_metric"
# Two virtual keys share each model's traffic: every LiteLLM family carries key, team and user labels.
_LITELLM_KEYS = (
    ("88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f032243d4d4", "prod-app", "team-a", "u-1", 0.75),
    ("77ab10c3e1f2a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3", "batch-jobs", "team-b", "u-2", 0.25),
)
_LITELLM_ERRORS = {
    "upstream_error": ("500", "Openai.APIError"),
    "rate_limited": ("429", "Openai.RateLimitError"),
    "timeout": ("408", "Openai.Timeout"),
}


def _litellm_labels(model: str, key: tuple, with_model: bool = True) -> str:
    hashed, alias, team, user, _ = key
    deployment = f',model="{model}"' if with_model else ""
    return (
        f'api_key_alias="{alias}",end_user="None",hashed_api_key="{hashed}",model_id="{model}-deployment"'
        f'{deployment},requested_model="{model}",team="{team}",team_alias="{team}",user="{user}",user_email="None"'
    )


def _litellm_live(models: Mapping[str, Counts]) -> str:
    out: list[str] = []
    for model, c in models.items():
        for key in _LITELLM_KEYS:
            share = key[-1]
            out += _hist_lines(
                _LITELLM_HIST, _litellm_labels(model, key), [b * share for b in c.buckets], LITELLM_BUCKETS,
                c.latency_sum * share,
            )  # fmt: skip
    out.append(_header(_LITELLM_TTFT, "histogram", "Time to first token for LLM API call"))
    for model, c in models.items():
        for key in _LITELLM_KEYS:
            share = key[-1]
            ok = [b * share for b in _ok(c)]
            ttft_sum = c.latency_sum * share * _TTFT_SHARE
            out += _hist_lines(_LITELLM_TTFT, _litellm_labels(model, key), ok, LITELLM_BUCKETS, ttft_sum, _TTFT_READ)
    name = "litellm_proxy_total_requests_metric_total"
    out.append(_header(name, "counter", "Total number of requests made to the proxy server"))
    for model, c in models.items():
        for key in _LITELLM_KEYS:
            labels, share = _litellm_labels(model, key, with_model=False), key[-1]
            route = ',route="/chat/completions"'
            out.append(f'{name}{{{labels}{route},status_code="200"}} {math.floor(sum(_ok(c)) * share)}\n')
            for reason, (status, _) in _LITELLM_ERRORS.items():
                out.append(f'{name}{{{labels}{route},status_code="{status}"}} {math.floor(c.failed[reason] * share)}\n')
    name = "litellm_proxy_failed_requests_metric_total"
    out.append(_header(name, "counter", "Total number of failed responses from proxy"))
    for model, c in models.items():
        for key in _LITELLM_KEYS:
            labels, share = _litellm_labels(model, key, with_model=False), key[-1]
            for reason, (status, exc) in _LITELLM_ERRORS.items():
                value = math.floor(c.failed[reason] * share)
                out.append(f'{name}{{{labels},exception_class="{exc}",exception_status="{status}"}} {value}\n')
    for name, attr in (
        ("litellm_input_tokens_metric_total", "prompt"),
        ("litellm_output_tokens_metric_total", "completion"),
        ("litellm_total_tokens_metric_total", None),
    ):
        out.append(_header(name, "counter", "Total number of tokens from LLM requests"))
        for model, c in models.items():
            value = getattr(c, attr) if attr else c.prompt + c.completion
            for key in _LITELLM_KEYS:
                out.append(f"{name}{{{_litellm_labels(model, key)}}} {math.floor(value * key[-1])}\n")
    name = "litellm_spend_metric_total"
    out.append(_header(name, "counter", "Total spend on LLM requests"))
    for model, c in models.items():
        for hashed, alias, team, user, share in _LITELLM_KEYS:
            labels = f'api_key_alias="{alias}",end_user="None",hashed_api_key="{hashed}",model="{model}",team="{team}"'
            out.append(f'{name}{{{labels},team_alias="{team}",user="{user}"}} {_spend(model, c) * share:.6f}\n')
    return "".join(out)


def _padding(series: int, per_set: int, render: Callable[[int], str]) -> bytes:
    return "".join(render(i) for i in range(series // per_set)).encode()


_PADDING_SHAPE = (150, 300, 380, 145, 20, 5, 0, 0, 0)  # the steady latency, per mille per interval of BUCKETS


def _static_intervals(i: int) -> list[float]:
    total = 50 + (i * 7919) % 950  # deterministic spread of counts across label sets
    return [total * share / 1000 for share in _PADDING_SHAPE]


def _litellm_padding(series: int) -> bytes:
    def one(i: int) -> str:
        model = MODELS[i % len(MODELS)]
        labels = (
            f'api_key_alias="key-{i:06d}",end_user="None",hashed_api_key="{i:064x}",model_id="{model}-deployment",'
            f'model="{model}",requested_model="{model}",team="team-{i % 97:02d}",team_alias="team-{i % 97:02d}",'
            f'user="user-{i:06d}",user_email="None"'
        )
        intervals = _static_intervals(i)
        return "".join(_hist_lines(_LITELLM_HIST, labels, intervals, LITELLM_BUCKETS, 0.5 * sum(intervals)))

    return _padding(series, len(LITELLM_BUCKETS) + 3, one)


# -- OpenTelemetry GenAI, as Envoy AI Gateway serves it ------------------------------------------------------

OTEL_BUCKETS = tuple(round(0.01 * 2**n, 2) for n in range(14))  # 0.01 … 81.92
OTEL_TOKEN_BUCKETS = tuple(float(4**n) for n in range(14))  # 1 … 67108864
OTEL_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
_OTEL_HIST = "gen_ai_server_request_duration_seconds"
_OTEL_SCOPE = 'otel_scope_name="envoyproxy/ai-gateway",otel_scope_schema_url="",otel_scope_version=""'


def _otel_labels(model: str, response: str | None = None) -> str:
    return (
        f'gen_ai_operation_name="chat",gen_ai_original_model="{model}",gen_ai_provider_name="{_PROVIDERS[model]}",'
        f'gen_ai_request_model="{model}",gen_ai_response_model="{response or model}",{_OTEL_SCOPE}'
    )


def _otel_live(models: Mapping[str, Counts]) -> str:
    out: list[str] = []
    for model, c in models.items():
        ok, failed = _ok(c), c.fail_buckets
        share = sum(failed) / sum(c.buckets) if sum(c.buckets) else 0.0
        out += _hist_lines(_OTEL_HIST, _otel_labels(model), ok, OTEL_BUCKETS, c.latency_sum * (1 - share))
        labels = _otel_labels(model) + ',error_type="_OTHER"'
        out += _hist_lines(_OTEL_HIST, labels, failed, OTEL_BUCKETS, c.latency_sum * share)
    name = "gen_ai_client_token_usage"
    out.append(_header(name, "histogram", "Number of tokens processed."))
    for model, c in models.items():
        cached = {tokens * 0.3: n for tokens, n in c.prompt_per_request.items()}  # part of input: not counted
        for kind, per_request in (
            ("input", c.prompt_per_request),
            ("output", c.completion_per_request),
            ("cached_input", cached),
        ):
            labels = f'{_otel_labels(model)},gen_ai_token_type="{kind}"'
            out += _token_hist_lines(name, labels, per_request, OTEL_TOKEN_BUCKETS)
    name = "gen_ai_server_time_to_first_token_seconds"
    out.append(_header(name, "histogram", "Time to receive first token in streaming responses."))
    for model, c in models.items():
        ttft_sum = c.latency_sum * _TTFT_SHARE
        out += _hist_lines(name, _otel_labels(model), _ok(c), OTEL_TTFT_BUCKETS, ttft_sum, _TTFT_READ)
    return "".join(out)


def _otel_padding(series: int) -> bytes:
    def one(i: int) -> str:
        model = MODELS[i % len(MODELS)]
        intervals = _static_intervals(i)
        labels = _otel_labels(model, f"{model}-snapshot-{i:06d}")
        return "".join(_hist_lines(_OTEL_HIST, labels, intervals, OTEL_BUCKETS, 0.5 * sum(intervals)))

    return _padding(series, len(OTEL_BUCKETS) + 3, one)


# -- vLLM ------------------------------------------------------------------------------------------------------

VLLM_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0)
VLLM_BUCKETS += (240.0, 480.0, 960.0, 1920.0, 7680.0)
VLLM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
VLLM_TTFT_BUCKETS += (20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_VLLM_HIST = "vllm:e2e_request_latency_seconds"


def _vllm_labels(model: str, engine: int = 0) -> str:
    return f'engine="{engine}",model_name="{model}"'


def _vllm_live(models: Mapping[str, Counts]) -> str:
    out: list[str] = []
    for model, c in models.items():
        out += _hist_lines(_VLLM_HIST, _vllm_labels(model), c.buckets, VLLM_BUCKETS, c.latency_sum)
    name = "vllm:request_success_total"
    out.append(_header(name, "counter", "Count of successfully processed requests."))
    for model, c in models.items():
        ok = sum(_ok(c))
        reasons = {
            "stop": ok * 0.8,
            "length": ok * 0.2,
            "abort": c.failed["rate_limited"],
            "error": c.failed["upstream_error"] + c.failed["timeout"],
        }
        for reason, value in reasons.items():
            out.append(f'{name}{{{_vllm_labels(model)},finished_reason="{reason}"}} {math.floor(value)}.0\n')
    for name, attr, help_text in (
        ("vllm:prompt_tokens_total", "prompt", "Number of prefill tokens processed."),
        ("vllm:generation_tokens_total", "completion", "Number of generation tokens processed."),
    ):
        out.append(_header(name, "counter", help_text))
        for model, c in models.items():
            out.append(f"{name}{{{_vllm_labels(model)}}} {math.floor(getattr(c, attr))}.0\n")
    name = "vllm:time_to_first_token_seconds"
    out.append(_header(name, "histogram", "Histogram of time to first token in seconds."))
    for model, c in models.items():
        ttft_sum = c.latency_sum * _TTFT_SHARE
        out += _hist_lines(name, _vllm_labels(model), c.buckets, VLLM_TTFT_BUCKETS, ttft_sum, _TTFT_READ)
    return "".join(out)


def _vllm_padding(series: int) -> bytes:
    def one(i: int) -> str:
        intervals = _static_intervals(i)
        labels = _vllm_labels(MODELS[i % len(MODELS)], engine=i + 1)
        return "".join(_hist_lines(_VLLM_HIST, labels, intervals, VLLM_BUCKETS, 0.5 * sum(intervals)))

    return _padding(series, len(VLLM_BUCKETS) + 3, one)


# -- Kong AI Gateway -----------------------------------------------------------------------------------------

KONG_BUCKETS = (250, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 10000, 30000, 60000)  # ms
_KONG_HIST = "kong_ai_llm_provider_latency_ms"
_KONG_CODES = {"upstream_error": "500", "rate_limited": "429", "timeout": "504"}


def _kong_labels(model: str, consumer: str = "") -> str:
    return (
        f'ai_provider="{_PROVIDERS[model]}",ai_model="{model}",cache_status="",vector_db="",embeddings_provider="",'
        f'embeddings_model="",workspace="default",consumer="{consumer}"'
    )


def _kong_live(models: Mapping[str, Counts]) -> str:
    out: list[str] = []
    for model, c in models.items():
        labels = _kong_labels(model) + ',request_mode="oneshot"'
        out += _hist_lines(_KONG_HIST, labels, c.buckets, KONG_BUCKETS, c.latency_sum * 1000, read=0.001)
    name = "kong_ai_llm_requests_total"
    out.append(_header(name, "counter", "AI requests total per ai_provider in Kong"))
    for model, c in models.items():
        out.append(f'{name}{{{_kong_labels(model)},request_mode="oneshot"}} {math.floor(sum(c.buckets))}\n')
    name = "kong_ai_llm_tokens_total"
    out.append(_header(name, "counter", "AI tokens total per ai_provider/cache in Kong"))
    for model, c in models.items():
        for kind, value in (
            ("prompt_tokens", c.prompt),
            ("completion_tokens", c.completion),
            ("total_tokens", c.prompt + c.completion),
        ):
            out.append(f'{name}{{{_kong_labels(model)},token_type="{kind}"}} {math.floor(value)}\n')
    name = "kong_ai_llm_cost_total"
    out.append(_header(name, "counter", "AI requests cost per ai_provider/cache in Kong"))
    for model, c in models.items():
        out.append(f"{name}{{{_kong_labels(model)}}} {_spend(model, c):.6f}\n")
    # Failures are only here, without a model: the one thing the canonical failure counter cannot get from Kong.
    name = "kong_http_requests_total"
    out.append(_header(name, "counter", "HTTP status codes per consumer/service/route in Kong"))
    ok = sum(sum(_ok(c)) for c in models.values())
    route = 'service="ai-gateway",route="chat",source="service",workspace="default",consumer=""'
    out.append(f'{name}{{{route},code="200"}} {math.floor(ok)}\n')
    for reason, code in _KONG_CODES.items():
        value = sum(c.failed[reason] for c in models.values())
        out.append(f'{name}{{{route},code="{code}"}} {math.floor(value)}\n')
    return "".join(out)


def _kong_padding(series: int) -> bytes:
    def one(i: int) -> str:
        intervals = _static_intervals(i)
        labels = _kong_labels(MODELS[i % len(MODELS)], consumer=f"consumer-{i:06d}") + ',request_mode="oneshot"'
        return "".join(_hist_lines(_KONG_HIST, labels, intervals, KONG_BUCKETS, 500 * sum(intervals), read=0.001))

    return _padding(series, len(KONG_BUCKETS) + 3, one)


def _fmt(name: str, hist: str, help_text: str, padding, live) -> Format:
    return Format(name, _header(hist, "histogram", help_text), padding, live)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        _fmt(
            "llm",
            _LLM_HIST,
            "Time from request to complete response, failed requests included.",
            _llm_padding,
            _llm_live,
        ),
        _fmt(
            "litellm",
            _LITELLM_HIST,
            "Total latency (seconds) for a request to LiteLLM",
            _litellm_padding,
            _litellm_live,
        ),
        _fmt(
            "otel-genai",
            _OTEL_HIST,
            "Generative AI server request duration such as time-to-last byte or last output token.",
            _otel_padding,
            _otel_live,
        ),
        _fmt("vllm", _VLLM_HIST, "Histogram of e2e request latency in seconds.", _vllm_padding, _vllm_live),
        _fmt(
            "kong",
            _KONG_HIST,
            "LLM response Latency for each AI plugins per ai_provider in Kong",
            _kong_padding,
            _kong_live,
        ),
    )
}


def get_format(name: str) -> Format:
    """The format called `name`; KeyError for an unknown one."""
    return FORMATS[name]


def series_per_padding_set(name: str) -> int:
    """Series in one padding label set of format `name` (its latency buckets, +Inf, _sum and _count)."""
    bounds = {"llm": BUCKETS[:-1], "litellm": LITELLM_BUCKETS, "otel-genai": OTEL_BUCKETS, "vllm": VLLM_BUCKETS}
    return len(bounds.get(name, KONG_BUCKETS)) + 3
