"""Prometheus recording rules and alerts: promtool checks, promtool unit tests, the shape every alert must have."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "deploy" / "prometheus"
RULES = PROM_DIR / "rules"
UNIT_TESTS = sorted((PROM_DIR / "tests").glob("*.yml"))
RUNBOOKS = ROOT / "bridge" / "runbooks.md"

ALERTS = {
    "LLMHighFailureRate": "critical",
    "LLMHighLatency": "warning",
    "LLMRequestSurge": "warning",
    "LLMTokenSurge": "warning",
    "LLMProxyDown": "critical",
    "LLMExporterDown": "critical",
    "AlertBridgeDeliveryFailing": "critical",
    "AlertBridgeDown": "critical",
    "AlertmanagerNotificationsFailing": "critical",
    "PrometheusAlertmanagerMissing": "critical",
    "PrometheusNotificationsDropped": "critical",
    "LLMSpendSurge": "warning",
    "LLMDailyBudgetExceeded": "warning",
    "Watchdog": "none",
}
# The runbook page the bridge serves, as the rules carry it; scripts/setup.sh and the local stack render
# RUNBOOK_BASE_URL (default BRIDGE_PUBLIC_URL + /runbooks) in its place.
RUNBOOK_BASE = "http://localhost:9095/runbooks"
TRAFFIC_ALERTS = ("LLMHighFailureRate", "LLMHighLatency", "LLMRequestSurge", "LLMTokenSurge")
RECORDS = (
    "llm:requests:rate5m",
    "llm:tokens:rate5m",
    "llm:failure_ratio:rate5m",
    "llm:latency_seconds:p50_5m",
    "llm:latency_seconds:p95_5m",
    "llm:latency_seconds:p99_5m",
    "llm:tokens_per_request:rate5m",
)
PROXY_METRICS = (
    "llm_requests_total",
    "llm_requests_failed_total",
    "llm_tokens_used_total",
    "llm_response_latency_seconds",
)


def _promtool(*args: str, cwd: Path = Path("/")) -> subprocess.CompletedProcess:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: run `make test`, which installs Debian's prometheus package")
    return subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60, cwd=cwd)


def _rules(name: str) -> list[dict]:
    return [rule for group in yaml.safe_load((RULES / name).read_text())["groups"] for rule in group["rules"]]


def _alert_rules() -> list[dict]:
    return _rules("alerts.yml")


def test_promtool_check_rules_is_clean():
    result = _promtool("check", "rules", str(RULES / "recording.yml"), str(RULES / "alerts.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout
    assert "SUCCESS: 15 rules found" in result.stdout


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=[p.stem for p in UNIT_TESTS])
def test_promtool_unit_tests_pass(unit_test: Path):
    # Run from / so that the rule files are found relative to the test file, as promtool documents.
    result = _promtool("test", "rules", str(unit_test))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


# Each mutation breaks one property the unit tests claim to cover; the unit tests must then fail.
MUTATIONS = [
    pytest.param("failure_rate", ") > 0.20", ") > 0.22", id="failure-threshold-raised"),
    pytest.param("failure_rate", ") > 0.20", ") > 0.18", id="failure-threshold-lowered"),
    pytest.param("failure_rate", "total[5m])) >= 0.1\n", "total[5m])) >= 0\n", id="failure-guard-dropped"),
    pytest.param("failure_rate", "total[5m])) >= 0.1\n", "total[5m])) >= 0.12\n", id="failure-guard-raised"),
    pytest.param("failure_rate", ">= 0.1\n        for: 2m\n", ">= 0.1\n        for: 0m\n", id="failure-for-dropped"),
    pytest.param("latency", "[5m]))) > 2\n", "[5m]))) > 1.9\n", id="latency-threshold-lowered"),
    pytest.param("latency", "[5m]))) > 2\n", "[5m]))) > 2.6\n", id="latency-threshold-raised"),
    pytest.param("latency", "_count[5m])) >= 0.1", "_count[5m])) >= 0", id="latency-guard-dropped"),
    pytest.param("latency", "histogram_quantile(0.95,", "histogram_quantile(0.9,", id="latency-p90-not-p95"),
    pytest.param("surges", "offset 1h)), 0.1)", "offset 1h)), 0.001)", id="request-floor-dropped"),
    pytest.param(
        "surges",
        "  >= 3\n          and on (job, model)",
        "  >= 3.1\n          and on (job, model)",
        id="request-threshold-raised",
    ),
    pytest.param(
        "surges",
        "  >= 3\n          and on (job, model)",
        "  >= 2.9\n          and on (job, model)",
        id="request-threshold-lowered",
    ),
    pytest.param(
        "surges",
        "          and on (job, model) group by (job, model) (llm_requests_total offset 65m)\n",
        "",
        id="request-full-baseline-dropped",
    ),
    pytest.param("surges", "offset 1h)), 10)", "offset 1h)), 0.001)", id="token-floor-dropped"),
    pytest.param("surges", "          >= 5\n", "          >= 4.8\n", id="token-threshold-lowered"),
    pytest.param("health", "llm_exporter_upstream_up == 0", "llm_exporter_upstream_up < 1.5", id="proxy-down-inverted"),
    pytest.param("health", "age_seconds) > 600", "age_seconds) > 598", id="stuck-queue-lowered"),
    pytest.param(
        "health",
        "\n          or\n          sum by (job, instance, channel)",
        "\n          and\n          sum by (job, instance, channel)",
        id="new-dead-letter",
    ),
    pytest.param("alert_path", 'up{job="alert-bridge"} == 0', 'up{job="alert-bridge"} == 2', id="bridge-down-ignored"),
    pytest.param("alert_path", '"store_failed"}[5m])) > 0', '"store_failed"}[5m])) > 10', id="store-fail-ignored"),
    pytest.param(
        "alert_path",
        '"store_failed"}[5m])) > 0\n        for: 5m',
        '"store_failed"}[5m])) > 0\n        for: 11m',
        id="bridge-down-too-slow",
    ),
    pytest.param(
        "alert_path",
        "failed_total[5m])) > 0\n        for: 10m",
        "failed_total[5m])) > 0\n        for: 20m",
        id="am-failing-too-slow",
    ),
    pytest.param(
        "alert_path",
        "failed_total[5m])) > 0\n        for: 10m",
        "failed_total[5m])) > 0\n        for: 3m",
        id="am-failing-on-one-failure",
    ),
    pytest.param("alert_path", "by (job, instance, integration)", "by (job, instance)", id="am-integration-lost"),
    pytest.param(
        "alert_path", 'discovered{job="prometheus"}) < 1', 'discovered{job="prometheus"}) < 0', id="am-missing"
    ),
    pytest.param(
        "alert_path",
        'dropped_total{job="prometheus"}[5m])) > 0',
        'dropped_total{job="prometheus"}[5m])) > 30',
        id="drops-ignored",
    ),
    pytest.param("spend", "offset 1d)), 1 / 3600)", "offset 1d)), 0.0001)", id="spend-floor-lowered"),
    pytest.param(
        "spend",
        "          >= 3\n          and on (job)",
        "          >= 3.2\n          and on (job)",
        id="spend-threshold-raised",
    ),
    pytest.param(
        "spend",
        "          >= 3\n          and on (job)",
        "          >= 2.8\n          and on (job)",
        id="spend-threshold-lowered",
    ),
    pytest.param(
        "spend",
        "          and on (job) group by (job) (llm_cost_usd_total offset 25h)\n",
        "",
        id="spend-history-dropped",
    ),
    pytest.param("spend", "increase(llm_cost_usd_total[24h])", "increase(llm_cost_usd_total[12h])", id="budget-12h"),
    pytest.param(
        "spend",
        "> on (job)\n          max by (job) (llm_daily_budget_usd)",
        "> on (job)\n          2 * max by (job) (llm_daily_budget_usd)",
        id="budget-doubled",
    ),
]


@pytest.mark.parametrize(("unit_test", "old", "new"), MUTATIONS)
def test_unit_tests_catch_a_broken_rule(tmp_path: Path, unit_test: str, old: str, new: str):
    alerts = (RULES / "alerts.yml").read_text()
    assert alerts.count(old) == 1, f"mutation target {old!r} must occur once in alerts.yml"
    (tmp_path / "rules").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "rules" / "alerts.yml").write_text(alerts.replace(old, new))
    shutil.copy(PROM_DIR / "tests" / f"{unit_test}.yml", tmp_path / "tests")
    result = _promtool("test", "rules", str(tmp_path / "tests" / f"{unit_test}.yml"))
    assert result.returncode != 0, f"the unit tests did not notice:\n{result.stdout}"
    assert "FAILED" in result.stdout + result.stderr


def test_exactly_the_named_alerts_with_their_severities():
    rules = _alert_rules()
    assert {r["alert"]: r["labels"]["severity"] for r in rules} == ALERTS


def test_exactly_the_named_recording_rules():
    assert tuple(r["record"] for r in _rules("recording.yml")) == RECORDS


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_alert_has_for_and_annotations(rule: dict):
    assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), "every alert waits a plain `for:`"
    ann = rule["annotations"]
    assert set(ann) == {"summary", "description", "runbook_url", "dashboard_url"}
    assert ann["runbook_url"] == f"{RUNBOOK_BASE}#{rule['alert'].lower()}"
    assert "$value" in ann["summary"] + ann["description"]
    assert ann["dashboard_url"].startswith(("/d/llm-overview/llm-overview", "/d/alert-bridge/alert-bridge"))


@pytest.mark.parametrize("name", TRAFFIC_ALERTS)
def test_traffic_alert_reads_the_proxy_metrics_per_job_and_model(name: str):
    (rule,) = [r for r in _alert_rules() if r["alert"] == name]
    expr = rule["expr"]
    assert "by (job, model)" in expr
    assert "var-model={{ $labels.model" in rule["annotations"]["dashboard_url"]
    assert any(m in expr for m in PROXY_METRICS)
    # Never the sidecar's derived gauges: the rules must hold where Prometheus scrapes a proxy directly.
    derived = r"llm_(request_failure_ratio|response_latency_p\d\d|\w+_surge_ratio|requests_per_second)"
    assert not re.search(derived, expr)


def test_no_string_matchers_on_le_and_no_derived_gauges_in_records():
    text = (RULES / "recording.yml").read_text() + (RULES / "alerts.yml").read_text()
    assert not re.search(r"\ble\s*(=|!=|=~|!~)\s*\"", text)
    for rule in _rules("recording.yml"):
        assert any(m in rule["expr"] for m in PROXY_METRICS)
        assert "by (job, model" in rule["expr"]


def test_every_alert_is_seen_firing_and_silent_by_the_unit_tests():
    firing: set[str] = set()
    silent: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    assert firing == set(ALERTS)
    assert silent == set(ALERTS)


def test_every_alert_has_a_runbook_section():
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", m.group(1).strip().lower()).replace(" ", "-")
        for m in re.finditer(r"^#{2,3} (.+)$", RUNBOOKS.read_text(), re.M)
    }
    for name in ALERTS:
        assert name.lower() in anchors, f"bridge/runbooks.md has no section for {name}"
