"""Configuration: durations, sizes, defaults, flags over environment, *_FILE tokens, errors naming the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from exporter.config import VARIABLES, ConfigError, Window, format_duration, load_config

URL = {"LLM_PROXY_URL": "http://127.0.0.1:8000/metrics"}


@pytest.mark.parametrize(
    ("seconds", "label"), [(60, "1m"), (300, "5m"), (90, "90s"), (3600, "1h"), (0.5, "500ms"), (12, "12s")]
)
def test_format_duration(seconds, label):
    assert format_duration(seconds) == label


def test_defaults():
    cfg = load_config([], URL)
    assert cfg.upstream_urls == ("http://127.0.0.1:8000/metrics",)
    assert cfg.upstream_labels == ("127.0.0.1:8000",)
    assert (cfg.listen_host, cfg.listen_port) == ("0.0.0.0", 9470)
    assert cfg.poll_interval == 15.0
    assert cfg.windows == (Window("1m", 60.0), Window("5m", 300.0))
    assert cfg.baseline == 3600.0
    assert cfg.group_by == ("model",)
    assert cfg.max_series == 10000
    assert cfg.latency_threshold == 2.0
    assert cfg.max_body == 64 * 1024**2
    assert cfg.token is None and cfg.upstream_token is None and cfg.prices is None


def test_flag_wins_over_environment():
    cfg = load_config(["--poll-interval", "5s", "--windows", "30s,10m"], {**URL, "EXPORTER_POLL_INTERVAL": "1m"})
    assert cfg.poll_interval == 5.0
    assert [w.label for w in cfg.windows] == ["30s", "10m"]


def test_tokens_from_files(tmp_path):
    (tmp_path / "up").write_text("upstream-token\n")
    (tmp_path / "own").write_text("own-token")
    cfg = load_config(
        [], {**URL, "LLM_PROXY_TOKEN_FILE": str(tmp_path / "up"), "EXPORTER_TOKEN_FILE": str(tmp_path / "own")}
    )
    assert (cfg.upstream_token, cfg.token) == ("upstream-token", "own-token")
    assert "upstream-token" not in repr(cfg) and "own-token" not in repr(cfg)


def test_fan_in_urls_and_labels():
    cfg = load_config([], {"LLM_PROXY_URL": "http://a:9000/metrics, https://user:pw@b/metrics?x=1"})
    assert cfg.upstream_labels == ("a:9000", "b:443")


def test_prices_file(tmp_path):
    path = tmp_path / "prices.yml"
    path.write_text("models:\n  gpt-4o: {prompt: 2.50, completion: 10.00}\ndefault: {prompt: 1, completion: 2}\n")
    cfg = load_config([], {**URL, "EXPORTER_PRICES_FILE": str(path)})
    assert cfg.prices.for_model("gpt-4o").completion == 10.0
    assert cfg.prices.for_model("unknown").prompt == 1.0


@pytest.mark.parametrize(
    ("env", "named", "hint"),
    [
        pytest.param({}, "LLM_PROXY_URL", "required", id="url-missing"),
        pytest.param({"LLM_PROXY_URL": "ftp://x/metrics"}, "LLM_PROXY_URL", "http", id="url-scheme"),
        pytest.param({"LLM_PROXY_URL": "http://a:1/m,http://a:1/n"}, "LLM_PROXY_URL", "same host:port", id="url-twice"),
        pytest.param({**URL, "EXPORTER_POLL_INTERVAL": "soon"}, "EXPORTER_POLL_INTERVAL", "duration", id="poll"),
        pytest.param({**URL, "EXPORTER_POLL_INTERVAL": "0"}, "EXPORTER_POLL_INTERVAL", "longer", id="poll-zero"),
        pytest.param({**URL, "EXPORTER_WINDOWS": "5s"}, "EXPORTER_WINDOWS", "two polls", id="window-short"),
        pytest.param({**URL, "EXPORTER_WINDOWS": "1m,x"}, "EXPORTER_WINDOWS", "duration", id="window-bad"),
        pytest.param({**URL, "EXPORTER_BASELINE": "1.5h"}, "EXPORTER_BASELINE", "duration", id="baseline"),
        pytest.param({**URL, "EXPORTER_LISTEN": "9470"}, "EXPORTER_LISTEN", "host:port", id="listen"),
        pytest.param({**URL, "EXPORTER_GROUP_BY": "model,le"}, "EXPORTER_GROUP_BY", "le", id="group-by-le"),
        pytest.param({**URL, "EXPORTER_GROUP_BY": "mo-del"}, "EXPORTER_GROUP_BY", "label", id="group-by-bad"),
        pytest.param({**URL, "EXPORTER_MAX_SERIES": "many"}, "EXPORTER_MAX_SERIES", "whole number", id="max-series"),
        pytest.param({**URL, "EXPORTER_MAX_SERIES": "0"}, "EXPORTER_MAX_SERIES", "at least 1", id="max-series-0"),
        pytest.param(
            {**URL, "EXPORTER_LATENCY_THRESHOLD": "-2"}, "EXPORTER_LATENCY_THRESHOLD", "positive", id="threshold"
        ),
        pytest.param({**URL, "EXPORTER_MAX_BODY": "lots"}, "EXPORTER_MAX_BODY", "size", id="max-body"),
        pytest.param(
            {**URL, "EXPORTER_PRICES_FILE": "/nonexistent/p.yml"},
            "EXPORTER_PRICES_FILE",
            "cannot read",
            id="prices-missing",
        ),
        pytest.param(
            {**URL, "LLM_PROXY_CA_FILE": "/nonexistent/ca.pem"}, "LLM_PROXY_CA_FILE", "readable", id="ca-missing"
        ),
        pytest.param(
            {**URL, "LLM_PROXY_TLS_INSECURE": "maybe"}, "LLM_PROXY_TLS_INSECURE", "true or false", id="insecure"
        ),
        pytest.param(
            {**URL, "LLM_PROXY_TOKEN": "a", "LLM_PROXY_TOKEN_FILE": "/x"},
            "LLM_PROXY_TOKEN_FILE",
            "only one",
            id="token-twice",
        ),
        pytest.param(
            {**URL, "EXPORTER_TOKEN_FILE": "/nonexistent/t"},
            "EXPORTER_TOKEN_FILE",
            "cannot read",
            id="token-file-missing",
        ),
        pytest.param({**URL, "EXPORTER_LOG_LEVEL": "loud"}, "EXPORTER_LOG_LEVEL", "one of", id="log-level"),
        pytest.param({**URL, "LLM_DAILY_BUDGET_USD": "lots"}, "LLM_DAILY_BUDGET_USD", "USD", id="budget-text"),
        pytest.param({**URL, "LLM_DAILY_BUDGET_USD": "-5"}, "LLM_DAILY_BUDGET_USD", "positive", id="budget-neg"),
    ],
)
def test_bad_config_names_the_variable(env, named, hint):
    with pytest.raises(ConfigError) as err:
        load_config([], env)
    assert named in str(err.value) and hint in str(err.value)


@pytest.mark.parametrize(
    ("content", "key"),
    [
        pytest.param("models: {gpt-4o: {prompt: 1}}\n", "models.gpt-4o.completion", id="missing-type"),
        pytest.param("models: {gpt-4o: {prompt: -1, completion: 1}}\n", "models.gpt-4o.prompt", id="negative"),
        pytest.param("models: {gpt-4o: {prompt: 1, completion: 1, cached: 2}}\n", "cached", id="unknown-type"),
        pytest.param("modles: {}\n", "modles", id="unknown-top-key"),
        pytest.param("models: [1, 2\n", "invalid YAML", id="bad-yaml"),
    ],
)
def test_bad_prices_file_names_the_key(tmp_path, content, key):
    path = tmp_path / "prices.yml"
    path.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_config([], {**URL, "EXPORTER_PRICES_FILE": str(path)})
    assert "EXPORTER_PRICES_FILE" in str(err.value) and key in str(err.value)


def test_secrets_never_in_config_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config([], {"LLM_PROXY_URL": "http://user:hunter2@h:notaport/metrics"})
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_config([], {**URL, "EXPORTER_TOKEN": "hunter2", "EXPORTER_TOKEN_FILE": "/x"})
    assert "hunter2" not in str(err.value)


def test_cli_exits_non_zero_naming_the_variable():
    env = {"PATH": "/usr/bin:/bin", "EXPORTER_WINDOWS": "1m", "EXPORTER_POLL_INTERVAL": "fast", **URL}
    result = subprocess.run([sys.executable, "-m", "exporter"], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "EXPORTER_POLL_INTERVAL" in result.stderr


def test_help_lists_every_variable():
    result = subprocess.run([sys.executable, "-m", "exporter", "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    for var in VARIABLES:
        assert var.env in result.stdout and var.flag in result.stdout


def test_daily_budget():
    assert load_config([], URL).daily_budget_usd is None
    assert load_config([], {**URL, "LLM_DAILY_BUDGET_USD": "250.5"}).daily_budget_usd == 250.5
    assert load_config(["--daily-budget-usd", "99"], {**URL, "LLM_DAILY_BUDGET_USD": "1"}).daily_budget_usd == 99
