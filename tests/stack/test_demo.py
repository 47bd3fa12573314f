"""The demo's settings, its port check and its status line."""

import json
import os
import socket
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

from stack.configs import Ports
from stack.demo import DemoConfigError, _summary, load_demo_config, unreachable_alerts
from stack.local import PortInUse, check_ports
from stack.status import Status, deliveries, firing_alerts, format_status
from tests.realbin import free_port

ROOT = Path(__file__).resolve().parents[2]


def test_defaults():
    cfg = load_demo_config({})
    assert cfg.ports == Ports(8000, 9470, 9090, 9093, 9095)
    assert cfg.factor == Fraction(1, 60)
    assert cfg.exit_after is None


def test_settings_from_environment():
    cfg = load_demo_config(
        {
            "DEMO_TIME_SCALE": "1/120",
            "DEMO_EXIT_AFTER": "330",
            "DEMO_PROMETHEUS_PORT": "19090",
            "SLACK_WEBHOOK_URL": "http://127.0.0.1:1/x",
            "SMTP_HOST": "127.0.0.1",
            "BRIDGE_CONFIG": "/tmp/b.yml",
            "BRIDGE_LISTEN": "0.0.0.0:1",  # the demo owns where the bridge listens
            "HOME": "/root",
        }
    )
    assert cfg.factor == Fraction(1, 120)
    assert cfg.exit_after == 330
    assert cfg.ports.prometheus == 19090
    assert dict(cfg.bridge_env) == {
        "SLACK_WEBHOOK_URL": "http://127.0.0.1:1/x",
        "SMTP_HOST": "127.0.0.1",
        "BRIDGE_CONFIG": "/tmp/b.yml",
    }


def test_format_and_the_alerts_it_cannot_fire():
    assert load_demo_config({}).format == "llm"
    assert load_demo_config({"DEMO_FORMAT": "litellm"}).format == "litellm"
    assert unreachable_alerts("kong") == ("LLMHighFailureRate",)  # Kong has no failure counter per model
    for fmt in ("llm", "litellm", "otel-genai", "vllm"):
        assert unreachable_alerts(fmt) == ()
    done = {f"{a}{{model=gpt-4o}}": ["fired", "resolved"] for a in ("LLMHighLatency", "LLMRequestSurge")}
    text = _summary(done, unreachable_alerts("kong"), "kong")
    assert "not completed: LLMTokenSurge" in text and "cannot fire with kong" in text and "LLMHighFailureRate" in text


@pytest.mark.parametrize(
    ("env", "names"),
    [
        pytest.param({"DEMO_TIME_SCALE": "fast"}, "DEMO_TIME_SCALE", id="scale-not-number"),
        pytest.param({"DEMO_TIME_SCALE": "0"}, "DEMO_TIME_SCALE", id="scale-zero"),
        pytest.param({"DEMO_TIME_SCALE": "2"}, "DEMO_TIME_SCALE", id="scale-above-one"),
        pytest.param({"DEMO_TIME_SCALE": "1/0"}, "DEMO_TIME_SCALE", id="scale-div-zero"),
        pytest.param({"DEMO_EXIT_AFTER": "soon"}, "DEMO_EXIT_AFTER", id="exit-not-number"),
        pytest.param({"DEMO_EXIT_AFTER": "-1"}, "DEMO_EXIT_AFTER", id="exit-negative"),
        pytest.param({"DEMO_BRIDGE_PORT": "http"}, "DEMO_BRIDGE_PORT", id="port-not-number"),
        pytest.param({"DEMO_SIM_PORT": "70000"}, "DEMO_SIM_PORT", id="port-range"),
        pytest.param({"DEMO_SIM_PORT": "9090"}, "DEMO_PROMETHEUS_PORT", id="ports-clash"),
        pytest.param({"DEMO_FORMAT": "portkey"}, "DEMO_FORMAT", id="unknown-format"),
    ],
)
def test_bad_settings_name_the_variable(env, names):
    with pytest.raises(DemoConfigError, match=names):
        load_demo_config(env)


def test_taken_port_names_the_variable_to_set():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        taken = s.getsockname()[1]
        ports = Ports(
            sim=free_port(), exporter=free_port(), prometheus=taken, alertmanager=free_port(), bridge=free_port()
        )
        with pytest.raises(PortInUse, match=rf"port {taken} for the Prometheus .* set DEMO_PROMETHEUS_PORT"):
            check_ports(ports)


def test_demo_command_exits_nonzero_on_a_taken_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        env = {**os.environ, "DEMO_ALERTMANAGER_PORT": str(s.getsockname()[1]), "DEMO_RUN_DIR": str(tmp_path / "r")}
        for key in ("DEMO_SIM_PORT", "DEMO_EXPORTER_PORT", "DEMO_PROMETHEUS_PORT", "DEMO_BRIDGE_PORT"):
            env[key] = str(free_port())
        result = subprocess.run(
            [sys.executable, "-m", "stack", "demo"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 2
    assert "DEMO_ALERTMANAGER_PORT" in result.stderr


def test_demo_refuses_to_empty_a_foreign_run_dir(tmp_path):
    (tmp_path / "precious.txt").write_text("keep")
    env = {**os.environ, "DEMO_RUN_DIR": str(tmp_path)}
    for key in (
        "DEMO_SIM_PORT",
        "DEMO_EXPORTER_PORT",
        "DEMO_PROMETHEUS_PORT",
        "DEMO_ALERTMANAGER_PORT",
        "DEMO_BRIDGE_PORT",
    ):
        env[key] = str(free_port())
    result = subprocess.run(
        [sys.executable, "-m", "stack", "demo"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "DEMO_RUN_DIR" in result.stderr
    assert (tmp_path / "precious.txt").read_text() == "keep"


def test_firing_alerts_from_prometheus_answer():
    body = json.dumps(
        {
            "status": "success",
            "data": {
                "alerts": [
                    {"labels": {"alertname": "LLMHighLatency", "model": "gpt-4o"}, "state": "firing"},
                    {"labels": {"alertname": "LLMHighFailureRate", "model": "gpt-4o"}, "state": "pending"},
                    {"labels": {"alertname": "Watchdog", "severity": "none"}, "state": "firing"},
                    {"labels": {"alertname": "LLMExporterDown", "instance": "127.0.0.1:9470"}, "state": "firing"},
                ]
            },
        }
    )
    assert firing_alerts(body) == ("LLMExporterDown{127.0.0.1:9470}", "LLMHighLatency{gpt-4o}")


def test_deliveries_from_bridge_metrics():
    text = (
        "# TYPE alert_bridge_deliveries_total counter\n"
        'alert_bridge_deliveries_total{channel="console",result="delivered"} 3.0\n'
        'alert_bridge_deliveries_total{channel="slack",result="delivered"} 2.0\n'
        'alert_bridge_deliveries_total{channel="slack",result="dead_lettered"} 1.0\n'
        'alert_bridge_deliveries_created{channel="slack",result="delivered"} 1.7e9\n'
    )
    assert deliveries(text) == ({"console": 3, "slack": 2}, 1)


def test_status_line():
    st = Status("demo", "failure-burst", 61.4, ("LLMHighFailureRate{gpt-4o}",), {"console": 2})
    assert format_status(st, 75) == (
        "[01:15] demo: failure-burst min 61 | firing: LLMHighFailureRate{gpt-4o} | delivered: console 2"
    )
    assert format_status(Status(), 0) == "[00:00] ?: ? | firing: none | delivered: 0"


def _demo_env(tmp_path, **extra):
    env = {**os.environ, "DEMO_RUN_DIR": str(tmp_path / "run"), **extra}
    ports = {}
    for key in (
        "DEMO_SIM_PORT",
        "DEMO_EXPORTER_PORT",
        "DEMO_PROMETHEUS_PORT",
        "DEMO_ALERTMANAGER_PORT",
        "DEMO_BRIDGE_PORT",
    ):
        ports[key] = env[key] = str(free_port())
    return env, [int(p) for p in ports.values()]


def _leftovers(run_dir: Path, ports: list[int]) -> list[str]:
    """Processes still mentioning the run dir (command line or environment), and ports still answering."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            blob = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if str(run_dir).encode() in blob:
            found.append(f"pid {proc.name}: {(proc / 'cmdline').read_bytes()[:200]!r}")
    for port in ports:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                found.append(f"port {port} still open")
    return found


@pytest.mark.realbin
@pytest.mark.parametrize("how", ["sigterm", "exit-after"])
def test_demo_starts_everything_and_leaves_nothing_behind(tmp_path, how):
    env, ports = _demo_env(tmp_path, **({"DEMO_EXIT_AFTER": "2"} if how == "exit-after" else {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "stack", "demo"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("demo: running"):
                if how == "sigterm":
                    proc.terminate()
                break
        out, _ = proc.communicate(timeout=60)
        lines.append(out)
    finally:
        proc.kill()
        proc.wait()
    text = "".join(lines)
    assert proc.returncode == 0, text
    for what in ("proxy simulator", "sidecar", "Prometheus", "Alertmanager", "alert bridge"):
        assert what in text
    assert "nothing left running" in text
    assert _leftovers(tmp_path / "run", ports) == [], text
    # The token files do not outlive the run.
    assert not list((tmp_path / "run").rglob("*token"))
