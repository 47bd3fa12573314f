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
# Generated when empty, kept in .env and written to their files.
SECRETS = {
    "PROMETHEUS_BEARER_TOKEN": "exporter_token",
    "BRIDGE_TOKEN": "bridge_token",
    "GRAFANA_ADMIN_PASSWORD": "grafana_admin_password",
}


def _run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    # The operator's settings come from .env or from `env`, not from whatever the test runner has.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(_SETTING_PREFIXES)}
    return subprocess.run(
        ["bash", str(SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**inherited, **(env or {})},
    )


_SETTING_PREFIXES = ("LLM_PROXY_", "FALLBACK_", "WATCHDOG_", "RUNBOOK_", "BRIDGE_", "SLACK_", "SMTP_")


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
    # The demo simulator's token (LLM_PROXY_URL points at it): generated into its file only, not into .env.
    demo_token = (deploy / "secrets" / "llm_proxy_token").read_text()
    assert len(demo_token) >= 32 and env["LLM_PROXY_TOKEN"] == ""
    assert len({*(env[k] for k in SECRETS), demo_token}) == 4, "each secret is its own"
    for value in (*(env[k] for k in SECRETS), demo_token):
        assert value not in first.stdout + first.stderr, "a secret was printed"
    assert "prometheus config OK" in first.stdout and "alertmanager config OK" in first.stdout
    assert (deploy / "config").is_dir()
    assert "no fallback receiver" in first.stderr  # none configured: said so

    second = _run("setup.sh", "--deploy-dir", str(deploy))
    assert second.returncode == 0, second.stdout + second.stderr
    assert _env(deploy / ".env") == env
    for key, file in SECRETS.items():
        assert (deploy / "secrets" / file).read_text() == env[key]
    assert (deploy / "secrets" / "llm_proxy_token").read_text() == demo_token


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
    # The Slack bot token neither: an empty file (no bot) for Compose to mount, then what .env says, like the
    # other channel secrets.
    assert env["SLACK_BOT_TOKEN"] == "" and (deploy / "secrets" / "slack_bot_token").read_text() == ""
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


# --- The proxy's token: the real one is taken, a change is picked up, only the demo gets a generated one ------


def _set_env_line(deploy: Path, key: str, value: str) -> None:
    text = (deploy / ".env").read_text()
    lines = [f"{key}={value}" if line.startswith(f"{key}=") else line for line in text.splitlines()]
    (deploy / ".env").write_text("\n".join(lines) + "\n")


def _proxy_token(deploy: Path) -> str:
    return (deploy / "secrets" / "llm_proxy_token").read_text()


def test_setup_takes_the_real_proxy_token_and_picks_up_a_change(tmp_path):
    deploy = _deploy_copy(tmp_path)
    setup = ("setup.sh", "--deploy-dir", str(deploy), "--no-validate")
    # As the README's quick start goes: setup, edit .env (a real proxy and its token), setup again.
    assert _run(*setup).returncode == 0
    generated = _proxy_token(deploy)
    _set_env_line(deploy, "LLM_PROXY_URL", "https://proxy.example.com/metrics")
    _set_env_line(deploy, "LLM_PROXY_TOKEN", "real-token-1")
    result = _run(*setup)
    assert result.returncode == 0, result.stderr
    assert _proxy_token(deploy) == "real-token-1"
    assert "real-token-1" not in result.stdout + result.stderr

    # The operator changes it: the next run rewrites the file.
    _set_env_line(deploy, "LLM_PROXY_TOKEN", "real-token-2")
    assert _run(*setup).returncode == 0
    assert _proxy_token(deploy) == "real-token-2"

    # The environment wins over .env.
    assert _run(*setup, env={"LLM_PROXY_TOKEN": "from-environment"}).returncode == 0
    assert _proxy_token(deploy) == "from-environment"

    # A token file: taken, and kept on later runs while .env has none; .env wins over it once set again.
    _set_env_line(deploy, "LLM_PROXY_TOKEN", "")
    token_file = tmp_path / "proxy-token"
    token_file.write_text("from-file\n")
    assert _run(*setup, "--proxy-token-file", str(token_file)).returncode == 0
    assert _proxy_token(deploy) == "from-file"
    assert _run(*setup).returncode == 0
    assert _proxy_token(deploy) == "from-file"
    _set_env_line(deploy, "LLM_PROXY_TOKEN", "real-token-3")
    assert _run(*setup).returncode == 0
    assert _proxy_token(deploy) == "real-token-3"
    assert generated not in _proxy_token(deploy)
    assert "LLM_PROXY_TOKEN=real-token-3" in (deploy / ".env").read_text()  # .env keeps what the operator wrote

    # Both a token file and the environment: refused, naming both.
    both = _run(*setup, "--proxy-token-file", str(token_file), env={"LLM_PROXY_TOKEN": "x"})
    assert both.returncode == 2 and "--proxy-token-file" in both.stderr and "LLM_PROXY_TOKEN" in both.stderr


def test_setup_never_sends_a_generated_token_to_a_real_proxy(tmp_path):
    deploy = _deploy_copy(tmp_path)
    setup = ("setup.sh", "--deploy-dir", str(deploy), "--no-validate")
    assert _run(*setup).returncode == 0
    assert len(_proxy_token(deploy)) >= 32  # the demo simulator's
    # Pointed at a real proxy without giving its token: no token rather than the demo's random one.
    _set_env_line(deploy, "LLM_PROXY_URL", "https://proxy.example.com/metrics")
    result = _run(*setup)
    assert result.returncode == 0
    assert _proxy_token(deploy) == ""
    assert "no LLM_PROXY_TOKEN" in result.stderr


# --- Secrets: written from .env into files, and absent from what Compose shows ---------------------------------

CHANNEL_SECRETS = {
    "SLACK_WEBHOOK_URL": ("slack_webhook_url", "https://hooks.slack.com/services/T0/B0/slack-secret-part", 10001),
    "DISCORD_WEBHOOK_URL": ("discord_webhook_url", "https://discord.com/api/webhooks/1/discord-secret", 10001),
    "TEAMS_WEBHOOK_URL": ("teams_webhook_url", "https://example.webhook.office.com/teams-secret", 10001),
    "WEBHOOK_URL": ("webhook_url", "https://hooks.example.com/generic-secret", 10001),
    "SMTP_PASSWORD": ("smtp_password", "smtp-secret-password", 10001),
    "FALLBACK_SMTP_PASSWORD": ("fallback_smtp_password", "fallback-secret-password", 65534),
    "GRAFANA_ADMIN_PASSWORD": ("grafana_admin_password", "grafana-secret-password", 472),
}


def test_setup_writes_secrets_to_files_and_compose_config_shows_none(tmp_path):
    from tests.deploy._stack_paths import compose_binary

    deploy = _deploy_copy(tmp_path)
    example = (deploy / "env.example").read_text()
    values = {k: v for k, (_, v, _) in CHANNEL_SECRETS.items()}
    values |= {
        "LLM_PROXY_URL": "https://proxy.example.com/metrics",
        "LLM_PROXY_TOKEN": "proxy-secret-token",
        "FALLBACK_EMAIL_TO": "oncall@example.com",
        "FALLBACK_EMAIL_FROM": "am@example.com",
        "FALLBACK_SMTP_SMARTHOST": "smtp.example.com:587",
        "WATCHDOG_URL": "https://hc-ping.example.com/watchdog-secret",
        "FALLBACK_WEBHOOK_URL": "https://hooks.example.com/fallback-secret",
    }
    lines = [f"{line.split('=')[0]}={values[line.split('=')[0]]}" if line.split("=")[0] in values else line
             for line in example.splitlines()]  # fmt: skip
    (deploy / ".env").write_text("\n".join(lines) + "\n")
    result = _run("setup.sh", "--deploy-dir", str(deploy))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "alertmanager config OK" in result.stdout  # amtool 0.25 accepts the rendered fallback and watchdog
    assert "fallback receiver: email,webhook" in result.stdout

    for _key, (name, value, owner) in CHANNEL_SECRETS.items():
        path = deploy / "secrets" / name
        assert path.read_text() == value, name
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        assert path.stat().st_uid == owner, name
    env = _env(deploy / ".env")
    generated = [env["PROMETHEUS_BEARER_TOKEN"], env["BRIDGE_TOKEN"]]
    secret_values = [v for _, v, _ in CHANNEL_SECRETS.values()] + ["proxy-secret-token", *generated]
    output = result.stdout + result.stderr
    assert not [v for v in secret_values if v in output], "setup printed a secret"

    rendered = (deploy / "rendered" / "alertmanager" / "alertmanager.yml").read_text()
    assert "auth_password_file: secrets/fallback_smtp_password" in rendered
    assert "fallback-secret-password" not in rendered
    assert stat.S_IMODE((deploy / "rendered" / "alertmanager" / "alertmanager.yml").stat().st_mode) == 0o640

    for profile in ((), ("--profile", "demo")):
        config = subprocess.run(
            [str(compose_binary()), "-f", str(deploy / "docker-compose.yml"), *profile, "config"],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin"},
        )
        assert config.returncode == 0, config.stderr
        leaked = [v for v in secret_values if v in config.stdout]
        assert not leaked, f"in docker compose config: {len(leaked)} secret value(s)"
        assert "/run/secrets/slack_webhook_url" in config.stdout


@pytest.mark.realbin
def test_health_check_says_whether_alertmanager_has_a_fallback_receiver(tmp_path):
    only_am = ("--skip", "prometheus,grafana,exporter,bridge")
    empty = 'route: {receiver: "null"}\nreceivers: [{name: "null"}, {name: fallback}]\n'
    with run_alertmanager(empty, tmp_path / "empty") as am:
        result = _run("health-check.sh", "--alertmanager-url", am.url, *only_am)
    assert result.returncode == 0, result.stdout  # a warning, not a failure
    assert "WARN alertmanager fallback receiver: none configured" in result.stdout
    webhook = empty.replace("{name: fallback}", '{name: fallback, webhook_configs: [{url: "http://127.0.0.1:9/x"}]}')
    with run_alertmanager(webhook, tmp_path / "webhook") as am:
        result = _run("health-check.sh", "--alertmanager-url", am.url, *only_am)
    assert result.returncode == 0, result.stdout
    assert "OK   alertmanager fallback receiver (webhook)" in result.stdout
