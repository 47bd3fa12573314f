"""Grafana provisioning and dashboards: structure, metric names, Grafana's schema, and every query live."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy._stack_paths import DEPLOY, GRAFANA, REPO

DASHBOARDS = {
    "llm-overview": GRAFANA / "dashboards" / "llm-overview.json",
    "alert-bridge": GRAFANA / "dashboards" / "alert-bridge.json",
}
DATASOURCE_UID = "prometheus"  # the provisioned datasource
# Every panel, target and query variable names the datasource through the `datasource` variable, so that a
# dashboard imported into another Grafana uses whichever Prometheus the importer picks.
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}

# The schema of the Grafana the Compose file pins (grafana/grafana-oss:12.1.0) and a TypeScript to check it.
GRAFANA_SCHEMA = "@grafana/schema@12.1.0"
TYPESCRIPT = "typescript@5.6.3"

# Names every Prometheus has, beside what the project produces; and what Prometheus and Alertmanager say about
# their own notifications (the alert path's alerts, from their self-scrapes).
PROMETHEUS_BUILTINS = {"up", "ALERTS", "ALERTS_FOR_STATE", "scrape_duration_seconds", "scrape_samples_scraped",
                       "prometheus_notifications_alertmanagers_discovered", "prometheus_notifications_dropped_total",
                       "alertmanager_notifications_failed_total"}  # fmt: skip
# The names fixed across the project (proxy, sidecar, bridge); code may add more.
CONTRACT = {
    "llm_requests_total", "llm_requests_failed_total", "llm_tokens_used_total", "llm_response_latency_seconds",
    "llm_request_failure_ratio", "llm_response_latency_p50_seconds", "llm_response_latency_p95_seconds",
    "llm_response_latency_p99_seconds", "llm_tokens_per_request", "llm_requests_per_second",
    "llm_tokens_per_second", "llm_slow_request_ratio", "llm_request_surge_ratio", "llm_token_surge_ratio",
    "llm_cost_usd_total", "llm_daily_budget_usd", "llm_exporter_upstream_up",
    "llm_exporter_upstream_scrape_duration_seconds",
    "llm_exporter_upstream_scrape_errors_total", "llm_exporter_upstream_last_success_timestamp_seconds",
    "llm_exporter_upstream_resets_total", "llm_exporter_series_dropped_total", "llm_exporter_build_info",
    "alert_bridge_notifications_received_total", "alert_bridge_notifications_rejected_total",
    "alert_bridge_deliveries_total", "alert_bridge_delivery_attempts_total", "alert_bridge_queue_depth",
    "alert_bridge_oldest_pending_age_seconds", "alert_bridge_delivery_latency_seconds",
    "alert_bridge_rate_limited_total", "alert_bridge_dead_letters_total", "alert_bridge_truncations_total",
}  # fmt: skip

_PROMQL_WORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "offset", "bool",
    "inf", "nan", "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "atan2",
}  # fmt: skip


def _load(name: str) -> dict:
    return json.loads(DASHBOARDS[name].read_text())


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def _queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) of every query, template variables' queries included."""
    found = [(p["title"], t["expr"]) for p in _panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "datasource":
            continue  # its query is a plugin type, not PromQL
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        found.append((f"variable {var['name']}", query))
    return found


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (label names, functions, keywords and durations left out)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    expr = re.sub(r"\boffset\s+\w+", "", expr)
    expr = re.sub(r"label_values\(([^,()]*),[^)]*\)", r"(\1)", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][\w:]*)(\s*\()?", expr):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _PROMQL_WORDS or re.fullmatch(r"\d+\w*", word):
            continue
        names.add(word)
    return names


def _base(name: str) -> str:
    """A family's name as declared: without the suffixes exposition and prometheus_client add."""
    return re.sub(r"_(bucket|count|sum|total|created)$", "", name)


def _names_in_code(package: str, prefix: str) -> set[str]:
    names: set[str] = set()
    for path in (REPO / package).rglob("*.py"):
        names |= set(re.findall(rf"[\"']({prefix}[a-z0-9_]+)[\"']", path.read_text()))
    return names


def _recorded_names() -> set[str]:
    names = set()
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            names |= {rule["record"] for rule in group["rules"] if "record" in rule}
    return names


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_structure(name):
    dashboard = _load(name)
    assert dashboard["uid"] == name
    assert dashboard.get("id") is None  # provisioned dashboards are identified by uid only
    panels = _panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        mine = {
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
            assert target["expr"].strip()
    for var in dashboard["templating"]["list"]:
        if var["type"] != "datasource":
            assert var["datasource"] == DATASOURCE_REF, var["name"]


def _datasource_refs(node: object) -> list[dict]:
    """Every `datasource` object anywhere in a dashboard."""
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "datasource" and isinstance(v, dict)]
        return found + [r for v in node.values() for r in _datasource_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _datasource_refs(v)]
    return []


@pytest.mark.parametrize("name", DASHBOARDS)
def test_dashboard_imports_anywhere(name):
    """A `datasource` variable (type prometheus) that every panel uses, and `__inputs` so that Grafana's "Import
    dashboard" asks for the datasource; no uid is hard-coded (only Grafana's own annotation source)."""
    dashboard = _load(name)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    var = variables["datasource"]
    assert var["type"] == "datasource" and var["query"] == "prometheus"
    assert dashboard["templating"]["list"][0] is var  # first, as the other variables' queries depend on it
    (needed,) = dashboard["__inputs"]
    assert needed == needed | {"type": "datasource", "pluginId": "prometheus"}
    # The import replaces ${DS_PROMETHEUS} with the chosen datasource: the variable starts there.
    assert var["current"]["value"] == "${" + needed["name"] + "}"
    refs = _datasource_refs(dashboard)
    hard_coded = [r for r in refs if r != DATASOURCE_REF and r.get("type") != "grafana"]
    assert not hard_coded, hard_coded
    assert sum(r == DATASOURCE_REF for r in refs) >= len([p for p in _panels(dashboard) if p["type"] != "row"])


def test_provisioned_stack_opens_the_dashboards_without_a_question():
    """With one Prometheus datasource, the default, the `datasource` variable resolves to it by itself."""
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())["datasources"]
    prometheus = [s for s in ds if s["type"] == "prometheus"]
    assert len(prometheus) == 1 and prometheus[0]["isDefault"] is True
    for name in DASHBOARDS:
        var = next(v for v in _load(name)["templating"]["list"] if v["name"] == "datasource")
        assert var["hide"] == 0 and var["regex"] == "" and var["multi"] is False and var["includeAll"] is False


def test_overview_shows_spend_against_the_budget():
    panel = next(p for p in _panels(_load("llm-overview")) if p["title"] == "Spend against budget (24h)")
    exprs = [t["expr"] for t in panel["targets"]]
    assert any("llm_cost_usd_total" in e and "[24h]" in e for e in exprs)
    assert any("llm_daily_budget_usd" in e for e in exprs)
    assert panel["fieldConfig"]["defaults"]["unit"] == "currencyUSD"


def test_overview_has_the_panels_the_issue_asks_for():
    dashboard = _load("llm-overview")
    exprs = " ".join(expr for _, expr in _queries(dashboard))
    for rule in ("llm:requests:rate5m", "llm:failure_ratio:rate5m", "llm:latency_seconds:p50_5m",
                 "llm:latency_seconds:p95_5m", "llm:latency_seconds:p99_5m", "llm:tokens_per_request:rate5m",
                 "llm_cost_usd_total", "ALERTS", "llm_exporter_upstream_up", 'up{job=~"$job"}'):  # fmt: skip
        assert rule in exprs, rule
    assert {v["name"] for v in dashboard["templating"]["list"]} >= {"model"}
    # Per-model panels filter on the variable.
    assert sum('model=~"$model"' in expr for _, expr in _queries(dashboard)) >= 10
    latency = next(p for p in _panels(dashboard) if p["title"].startswith("Latency p50"))
    defaults = latency["fieldConfig"]["defaults"]
    assert {s["value"] for s in defaults["thresholds"]["steps"]} >= {2}
    assert defaults["unit"] == "s"
    assert defaults["custom"]["thresholdsStyle"]["mode"].startswith("line")


def test_bridge_dashboard_covers_delivery():
    exprs = " ".join(expr for _, expr in _queries(_load("alert-bridge")))
    wanted = ("deliveries_total", "queue_depth", "oldest_pending_age_seconds", "rate_limited_total",
              "dead_letters_total", "delivery_latency_seconds_bucket")  # fmt: skip
    for metric in (f"alert_bridge_{w}" for w in wanted):
        assert metric in exprs, metric


def test_metric_name_extraction():
    expr = (
        "histogram_quantile(0.95, sum by (channel, le) (rate(alert_bridge_delivery_latency_seconds_bucket"
        '{channel=~"$channel", le!="x"}[$__rate_interval] offset 1h))) / (up > 0) or vector(0) + time()'
    )
    assert metric_names(expr) == {"alert_bridge_delivery_latency_seconds_bucket", "up"}
    assert metric_names('label_values(llm_requests_total{job=~"$job"}, model)') == {"llm_requests_total"}
    assert metric_names("sum by (job, model) (llm:requests:rate5m)") == {"llm:requests:rate5m"}


def _dashboard_and_rule_names() -> dict[str, set[str]]:
    named: dict[str, set[str]] = {}
    for name in DASHBOARDS:
        for title, expr in _queries(_load(name)):
            for metric in metric_names(expr):
                named.setdefault(metric, set()).add(f"{name}: {title}")
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                for metric in metric_names(rule["expr"]):
                    named.setdefault(metric, set()).add(f"{path.name}: {rule.get('record') or rule.get('alert')}")
    return named


def test_every_named_metric_is_in_the_project_contract():
    known = {_base(n) for n in CONTRACT} | _recorded_names() | PROMETHEUS_BUILTINS
    unknown = {m: where for m, where in _dashboard_and_rule_names().items() if _base(m) not in known and m not in known}
    assert not unknown, f"metrics nobody produces: {unknown}"


@pytest.mark.parametrize(
    ("package", "prefix"),
    [("exporter", "llm_exporter_"), ("exporter", "llm_"), ("bridge", "alert_bridge_")],
    ids=["sidecar-health", "proxy-and-derived", "bridge"],
)
def test_every_named_metric_is_produced_by_the_code(package, prefix):
    """Names taken from the code that produces them: the sidecar, the simulator (the proxy's four) and the bridge."""
    produced = {_base(n) for n in _names_in_code(package, prefix)}
    named = {m: w for m, w in _dashboard_and_rule_names().items() if m.startswith(prefix)}
    if prefix == "llm_":
        named = {m: w for m, w in named.items() if not m.startswith("llm_exporter_")}
    assert produced, f"no {prefix}* names found in {package}/"
    missing = {m: w for m, w in named.items() if _base(m) not in produced}
    assert not missing, f"named in dashboards or rules but not produced by {package}/: {missing}"


def test_provisioning_matches_compose_and_dashboards():
    ds = yaml.safe_load((GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text())
    (source,) = ds["datasources"]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "dashboards.yml").read_text())["providers"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = {v.split(":")[1]: v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]}
    for provider in providers:
        assert provider["type"] == "file"
        assert Path(mounts[provider["options"]["path"]]) == Path("./grafana/dashboards")


# --- Grafana's dashboard schema ---------------------------------------------------------------------------
# Chosen: @grafana/schema type-checked by tsc. A typed object literal makes TypeScript reject unknown keys,
# wrong types and wrong enum values; grafana-foundation-sdk's loader drops unknown keys silently, so it
# would need a round-trip diff and still not check types.


def _schema_toolchain() -> Path:
    """node_modules with @grafana/schema and typescript, installed once into a cache directory."""
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.skip("node and npm are needed to check the dashboards against @grafana/schema")
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "llm-monitoring" / "grafana-schema"
    tag = cache / f"{GRAFANA_SCHEMA}+{TYPESCRIPT}".replace("/", "_")
    tsc = cache / "node_modules" / ".bin" / "tsc"
    if not (tag.exists() and tsc.exists()):
        cache.mkdir(parents=True, exist_ok=True)
        argv = ["npm", "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--prefer-offline"]
        result = subprocess.run([*argv, GRAFANA_SCHEMA, TYPESCRIPT], capture_output=True, text=True, timeout=300)
        if result.returncode != 0:
            if any(s in result.stderr for s in ("ENOTFOUND", "EAI_AGAIN", "ECONNREFUSED", "ETIMEDOUT", "network")):
                pytest.skip(f"npm registry unreachable and nothing cached in {cache}")
            raise AssertionError(f"npm install failed:\n{result.stderr[-2000:]}")
        tag.touch()
    return cache


def _typecheck(cache: Path, sources: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    # Grafana's enums are TypeScript string enums; JSON carries their values. Json<T> turns each enum into
    # the union of its values and keeps everything else (unknown keys stay errors).
    header = (
        "import type { Dashboard } from '@grafana/schema';\n"
        "type Json<T> = T extends string ? `${T}` : T extends Array<infer U> ? Array<Json<U>>\n"
        "  : T extends object ? { [K in keyof T]: Json<T[K]> } : T;\n"
    )
    work = tmp_path / "ts"
    work.mkdir(parents=True)
    (work / "node_modules").symlink_to(cache / "node_modules")
    files = []
    for name, text in sources.items():
        # __inputs is the import wrapper Grafana's "Import dashboard" reads, not part of the dashboard model.
        text = json.dumps({k: v for k, v in json.loads(text).items() if not k.startswith("__")}, indent=2)
        path = work / f"{name}.ts"
        path.write_text(f"{header}export const dashboard: Json<Dashboard> = {text};\n")
        files.append(str(path))
    argv = [str(cache / "node_modules" / ".bin" / "tsc"), "--noEmit", "--strict", "--skipLibCheck",
            "--module", "esnext", "--moduleResolution", "bundler", "--target", "es2022", *files]  # fmt: skip
    return subprocess.run(argv, capture_output=True, text=True, cwd=work, timeout=120)


def test_dashboards_match_grafana_schema(tmp_path):
    cache = _schema_toolchain()
    result = _typecheck(cache, {name: path.read_text() for name, path in DASHBOARDS.items()}, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]


def test_schema_check_rejects_wrong_dashboards(tmp_path):
    """Guards the guard: an unknown key, a wrong type and a wrong enum value are each reported."""
    cache = _schema_toolchain()
    good = DASHBOARDS["alert-bridge"].read_text()
    bad = {
        "unknown_key": good.replace('"graphTooltip": 1', '"graphTooltip": 1, "refreshRate": 3', 1),
        "wrong_type": good.replace('"schemaVersion": 41', '"schemaVersion": "41"', 1),
        "wrong_enum": good.replace('"mode": "absolute"', '"mode": "absolut"', 1),
    }
    for name, text in bad.items():
        assert text != good, name
        result = _typecheck(cache, {name: text}, tmp_path / name)
        assert result.returncode != 0, name


# --- Every query against a real Prometheus that scrapes the simulator through the sidecar ---------------

# Panels that may rightly be empty here: no price table, no incident yet, no hour of history, no failures.
MAY_BE_EMPTY = {
    "Cost in range", "Cost per hour (USD)", "Spend against budget (24h)", "Active alerts",
    "Sidecar scrape errors by reason",
    "Counter resets and dropped series",
}  # fmt: skip
LIVE_PROMETHEUS = """
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [rules/*.yml]
scrape_configs:
  - job_name: llm-auth-proxy
    authorization: {type: Bearer, credentials_file: secrets/exporter_token}
    static_configs: [{targets: ["127.0.0.1:%(exporter)d"]}]
  - job_name: alert-bridge
    static_configs: [{targets: ["127.0.0.1:%(bridge)d"]}]
"""


def _substitute(expr: str) -> str:
    """What Grafana sends for the default variable values (All) and a short time range."""
    for var, value in {"$job": ".*", "$model": ".*", "$channel": ".*"}.items():
        expr = expr.replace(var, value)
    return expr.replace("$__rate_interval", "5s").replace("$__range", "1m")


def _instant(base: str, expr: str) -> dict:
    from urllib.parse import urlencode
    from urllib.request import urlopen

    try:
        with urlopen(f"{base}/api/v1/query?{urlencode({'query': expr})}", timeout=10) as r:
            return json.load(r)
    except Exception as exc:  # a 400 carries PromQL's error message in its body
        body = getattr(exc, "read", lambda: b"")().decode(errors="replace")
        raise AssertionError(f"{expr}: {exc} {body}") from exc


def _series_query(expr: str) -> str:
    """label_values(metric, label) as the series query Grafana runs for it."""
    match = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", expr.strip())
    return f"count by ({match.group(2)}) ({match.group(1)})" if match else expr


@pytest.mark.realbin
def test_every_panel_query_runs_against_real_prometheus(tmp_path):
    from tests.deploy._live_stack import live_stack
    from tests.realbin import run_prometheus

    with live_stack(tmp_path / "stack") as stack:
        workdir = tmp_path / "prometheus"
        shutil.copytree(DEPLOY / "prometheus" / "rules", workdir / "rules")
        (workdir / "secrets").mkdir()
        shutil.copy(stack.exporter_token_file, workdir / "secrets" / "exporter_token")
        config = LIVE_PROMETHEUS % {"exporter": stack.exporter_port, "bridge": stack.bridge_port}
        with run_prometheus(config, workdir) as prom:
            import time

            ready = ("llm:requests:rate5m", "llm:latency_seconds:p95_5m", "llm:tokens_per_request:rate5m")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if all(_instant(prom.url, q)["data"]["result"] for q in ready):
                    break
                time.sleep(0.5)
            else:
                raise AssertionError(f"no recorded data after 30 s:\n{prom.logs()[-2000:]}")

            empty = []
            for name in DASHBOARDS:
                for title, expr in _queries(_load(name)):
                    answer = _instant(prom.url, _series_query(_substitute(expr)))
                    assert answer["status"] == "success", (title, expr, answer)
                    if name == "llm-overview" and title not in MAY_BE_EMPTY and not answer["data"]["result"]:
                        empty.append(title)
            # A panel with several queries counts as having data when any of them has.
            panels_with_data = {
                p["title"]
                for p in _panels(_load("llm-overview"))
                for t in p.get("targets", [])
                if _instant(prom.url, _substitute(t["expr"]))["data"]["result"]
            }
            assert not [t for t in empty if t not in panels_with_data], f"traffic panels without data: {empty}"
