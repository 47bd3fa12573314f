"""The generated PrometheusRules, AlertmanagerConfig and dashboard ConfigMaps match their deploy/ sources."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

import stack.kubernetes as gen
from tests.kubernetes.manifests import KUBE_DIR, REPO, one, render

SOURCES = REPO / "deploy"
EXAMPLE = KUBE_DIR / "overlays" / "example"


def test_generated_files_are_up_to_date_with_their_sources():
    files = gen.render_all()
    stale = [name for name, text in files.items() if (gen.GENERATED_DIR / name).read_text() != text]
    assert not stale, f"stale: {stale}; run `python -m stack.kubernetes` and commit the result"
    assert gen.main(["--check"]) == 0


def test_check_reports_a_stale_file_and_a_run_repairs_it(tmp_path: Path, monkeypatch, capsys):
    generated = tmp_path / "generated"
    shutil.copytree(gen.GENERATED_DIR, generated)
    monkeypatch.setattr(gen, "GENERATED_DIR", generated)
    rules = generated / "prometheus-rules.yaml"
    rules.write_text(rules.read_text().replace("> 0.20", "> 0.25"))
    assert gen.main(["--check"]) == 1
    assert "prometheus-rules.yaml" in capsys.readouterr().err
    assert gen.main([]) == 0
    assert gen.main(["--check"]) == 0
    assert "> 0.20" in rules.read_text()


def test_prometheus_rules_equal_the_compose_stacks_rules():
    rules = [o for o in render(EXAMPLE) if o["kind"] == "PrometheusRule"]
    sources = sorted((SOURCES / "prometheus" / "rules").glob("*.yml"))
    assert sorted(r["metadata"]["name"] for r in rules) == [f"llm-monitoring-{p.stem}" for p in sources]
    for path in sources:
        rule = one(rules, "PrometheusRule", f"llm-monitoring-{path.stem}")
        assert rule["spec"]["groups"] == yaml.safe_load(path.read_text())["groups"], path.name


def test_dashboard_configmaps_carry_each_dashboard_byte_for_byte():
    maps = [
        o
        for o in render(EXAMPLE)
        if o["kind"] == "ConfigMap" and "grafana_dashboard" in o["metadata"].get("labels", {})
    ]
    sources = sorted((SOURCES / "grafana" / "dashboards").glob("*.json"))
    assert len(maps) == len(sources) > 0
    for path in sources:
        cm = one(maps, "ConfigMap", f"llm-monitoring-dashboard-{path.stem}")
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["data"] == {path.name: path.read_text()}
        # Grafana's sidecar loads each file; the uid stays what the alerts' dashboard_url links to.
        assert json.loads(cm["data"][path.name])["uid"]


def _matcher_text(m: dict) -> str:
    value = m["value"].replace("\\", "\\\\").replace('"', '\\"')
    return f'{m["name"]}{m["matchType"]}"{value}"'


def _normalise(text: str) -> str:
    # Alertmanager accepts name="value" and name=value alike: compare the quoted form.
    m = re.match(r'^\s*(\w+)\s*(=~|!~|!=|=)\s*"?(.*?)"?\s*$', text)
    assert m, text
    return f'{m[1]}{m[2]}"{m[3]}"'


def _route_back(route: dict) -> dict:
    # AlertmanagerConfig → alertmanager.yml spelling, to compare with the source.
    keys = {v: k for k, v in gen._ROUTE_KEYS.items()}
    out = {}
    for key, value in route.items():
        if key == "matchers":
            value = [_matcher_text(m) for m in value]
        elif key == "routes":
            value = [_route_back(r) for r in value]
        out[keys[key]] = value
    return out


def _source_route(route: dict) -> dict:
    out = dict(route)
    if "matchers" in out:
        out["matchers"] = [_normalise(m) for m in out["matchers"]]
    if "routes" in out:
        out["routes"] = [_source_route(r) for r in out["routes"]]
    return out


def test_alertmanager_config_routes_like_the_compose_stack():
    source = yaml.safe_load((SOURCES / "alertmanager" / "alertmanager.yml").read_text())
    config = one(render(EXAMPLE), "AlertmanagerConfig")["spec"]
    route = dict(config["route"])
    # The one addition: the branch takes only this project's alerts out of the cluster's Alertmanager.
    ours, *rest = route.pop("matchers")
    assert (ours["name"], ours["matchType"]) == ("alertname", "=~")
    assert sorted(ours["value"].split("|")) == gen.alert_names() and "LLMHighFailureRate" in gen.alert_names()
    if rest:
        route["matchers"] = rest
    assert _route_back(route) == _source_route(source["route"])
    assert [r["name"] for r in config["receivers"]] == [r["name"] for r in source["receivers"]]
    for receiver, original in zip(config["receivers"], source["receivers"], strict=True):
        hooks = receiver.get("webhookConfigs", [])
        assert len(hooks) == len(original.get("webhook_configs") or [])
        for hook, orig in zip(hooks, original.get("webhook_configs") or [], strict=True):
            assert hook["url"] == orig["url"].replace("http://alert-bridge:", f"http://{gen.BRIDGE_HOST}:")
            assert hook.get("sendResolved") == orig.get("send_resolved")
            assert hook.get("maxAlerts") == orig.get("max_alerts")
            assert hook["httpConfig"]["authorization"]["credentials"] == {"name": "alert-bridge-token", "key": "token"}
    inhibit = [
        {
            "source_matchers": [_matcher_text(m) for m in rule["sourceMatch"]],
            "target_matchers": [_matcher_text(m) for m in rule["targetMatch"]],
            "equal": rule["equal"],
        }
        for rule in config.get("inhibitRules", [])
    ]
    expected = [
        {
            **r,
            "source_matchers": list(map(_normalise, r["source_matchers"])),
            "target_matchers": list(map(_normalise, r["target_matchers"])),
        }
        for r in source.get("inhibit_rules", [])
    ]
    assert inhibit == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param(
            "route: {receiver: a, group_by_typo: [x]}\nreceivers: [{name: a}]", "group_by_typo", id="route-key"
        ),
        pytest.param(
            "route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{channel: x}]}]",
            "slack_configs",
            id="receiver",
        ),
        pytest.param(
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'http://x', url_file: y}]}]",
            "url_file",
            id="webhook-key",
        ),
        pytest.param(
            "route: {receiver: a}\n"
            "receivers: [{name: a, webhook_configs: [{url: 'http://x', http_config: {tls_config: {}}}]}]",
            "tls_config",
            id="http-config-key",
        ),
        pytest.param(
            "route: {receiver: a}\nreceivers: [{name: a}]\ntime_intervals: []", "time_intervals", id="top-key"
        ),
        pytest.param(
            "route: {receiver: a, mute_time_intervals: [night]}\nreceivers: [{name: a}]",
            "mute_time_intervals",
            id="mute",
        ),
        pytest.param(
            "route: {receiver: a, matchers: ['severity critical']}\nreceivers: [{name: a}]",
            "severity critical",
            id="matcher",
        ),
    ],
)
def test_generator_refuses_what_it_cannot_carry(tmp_path: Path, text: str, problem: str):
    config = tmp_path / "alertmanager.yml"
    config.write_text(text)
    with pytest.raises(ValueError, match=re.escape(problem)):
        gen.alertmanager_config(config)
