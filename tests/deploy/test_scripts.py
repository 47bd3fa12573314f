"""setup.sh and health-check.sh, run for real; every script's shell hygiene."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests.deploy._stack_paths import DEPLOY, SCRIPTS
from tests.realbin import free_port, run_alertmanager, run_prometheus

OPERATOR_SCRIPTS = ("setup.sh", "health-check.sh", "backup.sh", "restore.sh", "install-system-deps.sh")
SECRETS = {
    "PROMETHEUS_BEARER_TOKEN": "exporter_token",
    "BRIDGE_TOKEN": "bridge_token",
    "LLM_PROXY_TOKEN": "llm_proxy_token",
}


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def _env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return dict(pairs)


@pytest.mark.parametrize("script", OPERATOR_SCRIPTS)
def test_script_hygiene_and_help(script):
    text = (SCRIPTS / script).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert (SCRIPTS / script).stat().st_mode & stat.S_IXUSR
    assert subprocess.run(["bash", "-n", str(SCRIPTS / script)]).returncode == 0
    result = _run(script, "--help")
    assert result.returncode == 0 and result.stdout.startswith("Usage: scripts/")
    bad = _run(script, "--no-such-flag")
    assert bad.returncode != 0 and "--no-such-flag" in bad.stderr


def _deploy_copy(tmp_path: Path) -> Path:
    deploy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, deploy, ignore=shutil.ignore_patterns(".env", "secrets", "tests"))
    return deploy


def test_setup_generates_secrets_once_and_keeps_them(tmp_path):
    deploy = _deploy_copy(tmp_path)
    first = _run("setup.sh", "--deploy-dir", str(deploy))
    assert first.returncode == 0, first.stdout + first.stderr
    env = _env(deploy / ".env")
    assert stat.S_IMODE((deploy / ".env").stat().st_mode) == 0o600
    for key, file in SECRETS.items():
        assert len(env[key]) >= 32, key
        assert (deploy / "secrets" / file).read_text() == env[key]
        assert not (deploy / "secrets" / file).stat().st_mode & stat.S_IWOTH
    assert len(env["GRAFANA_ADMIN_PASSWORD"]) >= 32
    assert len({env[k] for k in (*SECRETS, "GRAFANA_ADMIN_PASSWORD")}) == 4, "each secret is its own"
    for value in (env[k] for k in (*SECRETS, "GRAFANA_ADMIN_PASSWORD")):
        assert value not in first.stdout + first.stderr, "a secret was printed"
    assert "prometheus config OK" in first.stdout and "alertmanager config OK" in first.stdout

    second = _run("setup.sh", "--deploy-dir", str(deploy))
    assert second.returncode == 0, second.stdout + second.stderr
    assert _env(deploy / ".env") == env
    for key, file in SECRETS.items():
        assert (deploy / "secrets" / file).read_text() == env[key]


def test_setup_keeps_a_secret_set_by_the_operator_and_adopts_token_files(tmp_path):
    deploy = _deploy_copy(tmp_path)
    (deploy / "secrets").mkdir()
    (deploy / "secrets" / "bridge_token").write_text("bridge-from-an-earlier-run")
    example = (deploy / "env.example").read_text()
    (deploy / ".env").write_text(example.replace("LLM_PROXY_TOKEN=\n", "LLM_PROXY_TOKEN=the-real-proxy-token\n"))
    result = _run("setup.sh", "--deploy-dir", str(deploy), "--no-validate")
    assert result.returncode == 0, result.stderr
    env = _env(deploy / ".env")
    assert env["LLM_PROXY_TOKEN"] == "the-real-proxy-token"
    assert (deploy / "secrets" / "llm_proxy_token").read_text() == "the-real-proxy-token"
    assert env["BRIDGE_TOKEN"] == "bridge-from-an-earlier-run"
    assert env["SLACK_WEBHOOK_URL"] == ""  # not a generated secret: the operator's to set
    # The Slack bot token neither: an empty file (no bot) for Compose to mount, then what .env says.
    assert env["SLACK_BOT_TOKEN"] == "" and (deploy / "secrets" / "slack_bot_token").read_text() == ""
    (deploy / "secrets" / "slack_bot_token").write_text("xoxb-put-there-by-hand")
    assert _run("setup.sh", "--deploy-dir", str(deploy), "--no-validate").returncode == 0
    assert (deploy / "secrets" / "slack_bot_token").read_text() == "xoxb-put-there-by-hand"
    text = (deploy / ".env").read_text().replace("SLACK_BOT_TOKEN=\n", "SLACK_BOT_TOKEN=xoxb-from-env\n")
    (deploy / ".env").write_text(text)
    rerun = _run("setup.sh", "--deploy-dir", str(deploy), "--no-validate")
    assert rerun.returncode == 0 and "xoxb-from-env" not in rerun.stdout + rerun.stderr
    assert (deploy / "secrets" / "slack_bot_token").read_text() == "xoxb-from-env"


def test_setup_fails_on_an_invalid_config_and_names_it(tmp_path):
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed")
    deploy = _deploy_copy(tmp_path)
    (deploy / "prometheus" / "prometheus.yml").write_text("global:\n  scrape_interval: often\n")
    result = _run("setup.sh", "--deploy-dir", str(deploy))
    assert result.returncode != 0
    assert "prometheus config INVALID" in result.stderr and "prometheus.yml" in result.stderr


@pytest.mark.realbin
def test_health_check_against_real_prometheus_alertmanager_sidecar_and_bridge(tmp_path):
    from tests.deploy._live_stack import live_stack

    with (
        live_stack(tmp_path / "stack") as stack,
        run_alertmanager('route: {receiver: "null"}\nreceivers: [{name: "null"}]\n', tmp_path / "am") as am,
    ):
        workdir = tmp_path / "prom"
        (workdir / "secrets").mkdir(parents=True)
        shutil.copy(stack.exporter_token_file, workdir / "secrets" / "exporter_token")
        config = f"""
global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: llm-auth-proxy
    authorization: {{type: Bearer, credentials_file: secrets/exporter_token}}
    static_configs: [{{targets: ["127.0.0.1:{stack.exporter_port}"]}}]
  - job_name: alert-bridge
    static_configs: [{{targets: ["127.0.0.1:{stack.bridge_port}"]}}]
  - job_name: alertmanager
    static_configs: [{{targets: ["{am.url.removeprefix("http://")}"]}}]
"""
        with run_prometheus(config, workdir) as prom:
            urls = [
                *("--prometheus-url", prom.url, "--alertmanager-url", am.url),
                *("--exporter-url", stack.exporter_url, "--bridge-url", stack.bridge_url),
            ]
            # Targets start "unknown" until their first scrape.
            deadline = time.monotonic() + 20
            while True:
                result = _run("health-check.sh", *urls, "--skip", "grafana")
                if result.returncode == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert result.returncode == 0, result.stdout + result.stderr
            lines = result.stdout.splitlines()
            checks = ("prometheus ready", "prometheus targets all up", "alertmanager ready", "exporter ready",
                      "alertmanager reaching the bridge", "bridge ready", "bridge queue not stuck")  # fmt: skip
            for check in checks:
                assert any(line.startswith(f"OK   {check}") for line in lines), check

            # A service that does not answer: its line says FAIL, the exit code is non-zero.
            dead = f"http://127.0.0.1:{free_port()}"
            result = _run("health-check.sh", *urls, "--grafana-url", dead)
            assert result.returncode == 1
            assert any(line.startswith("FAIL grafana healthy") for line in result.stdout.splitlines())
            assert "OK   prometheus ready" in result.stdout

            # A target Prometheus cannot scrape fails the targets check, naming the job.
            (workdir / "prometheus.yml").write_text(
                config + f'  - job_name: gone\n    static_configs: [{{targets: ["{dead.removeprefix("http://")}"]}}]\n'
            )
            prom.reload()
            deadline = time.monotonic() + 20
            while True:
                result = _run("health-check.sh", *urls, "--skip", "grafana")
                if "FAIL prometheus targets all up" in result.stdout or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert result.returncode == 1
            assert "gone" in next(line for line in result.stdout.splitlines() if "targets all up" in line)


def test_health_check_fails_when_the_bridge_queue_is_stuck(tmp_path):
    """A delivery the bridge cannot make (its webhook is down) ages in the queue past the limit."""
    import urllib.request

    from tests.deploy._live_stack import live_stack

    only_bridge = ("--skip", "prometheus,alertmanager,grafana,exporter")
    bridge_env = {"WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/hook", "BRIDGE_CONSOLE": "0"}
    with live_stack(tmp_path / "stack", bridge_env=bridge_env) as stack:
        ok = _run("health-check.sh", "--bridge-url", stack.bridge_url, *only_bridge)
        assert ok.returncode == 0, ok.stdout
        payload = (SCRIPTS.parent / "bridge" / "samples" / "alertmanager-0.25-firing.json").read_bytes()
        req = urllib.request.Request(f"{stack.bridge_url}/alerts", payload, {"Content-Type": "application/json"})
        assert urllib.request.urlopen(req, timeout=10).status == 200
        deadline = time.monotonic() + 20
        while True:
            stuck = _run("health-check.sh", "--bridge-url", stack.bridge_url, "--max-pending-age", "2", *only_bridge)
            if stuck.returncode != 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert stuck.returncode == 1, stuck.stdout
        assert "FAIL bridge queue not stuck: oldest pending delivery is" in stuck.stdout


def test_shellcheck_clean():
    from tests.deploy._stack_paths import venv_bin

    result = subprocess.run(
        [str(venv_bin("shellcheck")), *(str(SCRIPTS / s) for s in OPERATOR_SCRIPTS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
