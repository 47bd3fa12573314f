"""Rendering deploy/ for loopback: only addresses and durations change, and the real tools accept the result."""

import shutil
import subprocess
from fractions import Fraction

import pytest
import yaml

from stack.configs import Ports, render_alertmanager, render_prometheus, rewrite_addresses

PORTS = Ports(sim=18000, exporter=19470, prometheus=19090, alertmanager=19093, bridge=19095)
FALLBACK = "http://127.0.0.1:18999/fallback"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param('targets: ["llm-exporter:9470"]', 'targets: ["127.0.0.1:19470"]', id="sidecar"),
        pytest.param("- alertmanager:9093", "- 127.0.0.1:19093", id="alertmanager"),
        pytest.param(
            "url: http://alert-bridge:9095/alerts/critical",
            "url: http://127.0.0.1:19095/alerts/critical",
            id="bridge-url",
        ),
        pytest.param('["localhost:9090"]', '["127.0.0.1:19090"]', id="self-scrape-localhost"),
        pytest.param('["prometheus:9090"]', '["127.0.0.1:19090"]', id="prometheus"),
        pytest.param("http://llm-proxy-sim:8000/metrics", "http://127.0.0.1:18000/metrics", id="simulator"),
        pytest.param("grafana:3000/d/llm", "grafana:3000/d/llm", id="grafana-not-run-untouched"),
        pytest.param("localhost:3000", "localhost:3000", id="unknown-localhost-port-untouched"),
        pytest.param("my-prometheus:9090", "my-prometheus:9090", id="longer-name-untouched"),
        pytest.param("alertmanager:9999", "alertmanager:9999", id="other-port-untouched"),
        pytest.param("summary: the alertmanager is down", "summary: the alertmanager is down", id="prose"),
    ],
)
def test_rewrite_addresses(before, after):
    assert rewrite_addresses(before, PORTS) == after


def _fake_deploy(tmp_path):
    deploy = tmp_path / "deploy"
    (deploy / "prometheus/rules").mkdir(parents=True)
    (deploy / "prometheus/secrets").mkdir()
    (deploy / "prometheus/secrets/exporter_token").write_text("real-secret-not-to-copy")
    (deploy / "prometheus/prometheus.yml").write_text(
        "global:\n  scrape_interval: 15s\nscrape_configs:\n  - job_name: x\n"
        "    static_configs:\n      - targets: ['llm-exporter:9470']\n"
    )
    (deploy / "prometheus/rules/a.yml").write_text(
        "groups:\n  - name: g\n    rules:\n      - record: r\n        expr: rate(x[5m])\n"
    )
    (deploy / "prometheus/README.txt").write_text("as is: llm-exporter:9470 for: 1h\n")
    (deploy / "alertmanager").mkdir()
    (deploy / "alertmanager/alertmanager.yml").write_text("route:\n  group_wait: 30s\n")
    return deploy


def test_render_copies_the_tree_scaled_and_rewritten(tmp_path):
    deploy = _fake_deploy(tmp_path)
    cfg = render_prometheus(tmp_path / "out", PORTS, Fraction(1, 60), "tok-e", deploy)
    assert cfg == tmp_path / "out/prometheus.yml"
    assert "scrape_interval: 250ms" in cfg.read_text()
    assert "127.0.0.1:19470" in cfg.read_text()
    assert "rate(x[5s])" in (tmp_path / "out/rules/a.yml").read_text()
    # Non-YAML files are copied byte for byte; a secrets dir in the source is never copied.
    assert (tmp_path / "out/README.txt").read_text() == "as is: llm-exporter:9470 for: 1h\n"
    assert (tmp_path / "out/secrets/exporter_token").read_text() == "tok-e"
    assert (tmp_path / "out/secrets/exporter_token").stat().st_mode & 0o077 == 0

    am = render_alertmanager(tmp_path / "am", PORTS, Fraction(1, 60), "tok-b", deploy)
    assert "group_wait: 500ms" in am.read_text()
    assert (tmp_path / "am/secrets/bridge_token").read_text() == "tok-b"


def test_rendered_prometheus_config_is_valid_and_local(tmp_path):
    cfg = render_prometheus(tmp_path / "prometheus", PORTS, Fraction(1, 60), "tok")
    text = cfg.read_text()
    for name in ("llm-exporter:", "alert-bridge:", "alertmanager:9093", "localhost:9090"):
        assert name not in text
    targets = [
        t for sc in yaml.safe_load(text)["scrape_configs"] for s in sc.get("static_configs", []) for t in s["targets"]
    ]
    assert targets and all(t.startswith("127.0.0.1:") for t in targets), targets
    # Runbook links open the local bridge's page.
    rules = (tmp_path / "prometheus" / "rules" / "alerts.yml").read_text()
    assert "http://127.0.0.1:19095/runbooks#llmproxydown" in rules and "localhost:9095" not in rules
    result = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "config", str(cfg)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_rendered_alertmanager_config_is_valid_and_local(tmp_path):
    cfg = render_alertmanager(tmp_path / "alertmanager", PORTS, Fraction(1, 60), "tok", fallback_url=FALLBACK)
    text = cfg.read_text()
    assert "alert-bridge:" not in text
    assert "127.0.0.1:19095" in text
    receivers = {r["name"]: r for r in yaml.safe_load(text)["receivers"]}
    assert receivers["fallback"]["webhook_configs"][0]["url"] == FALLBACK
    result = subprocess.run(
        [shutil.which("amtool") or "amtool", "check-config", str(cfg)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
