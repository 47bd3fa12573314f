"""The Compose file, validated by the real Compose v2 binary (no engine needed for `config`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy._stack_paths import DEPLOY, compose_binary

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
CORE = {"llm-exporter", "alert-bridge", "prometheus", "alertmanager", "grafana"}


def _env_file(tmp_path: Path, **overrides: str) -> Path:
    """deploy/env.example with the secrets filled in, as scripts/setup.sh would leave deploy/.env."""
    values = {
        "GRAFANA_ADMIN_PASSWORD": "test-password",
        "PROMETHEUS_BEARER_TOKEN": "t1",
        "BRIDGE_TOKEN": "t2",
        "LLM_PROXY_TOKEN": "t3",
    }
    values.update(overrides)
    lines = []
    for line in (DEPLOY / "env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values[key]}" if key in values and not line.startswith("#") else line)
    path = tmp_path / "env"
    path.write_text("\n".join(lines) + "\n")
    return path


def _compose(env_file: Path, *args: str) -> subprocess.CompletedProcess:
    argv = [str(compose_binary()), "-f", str(COMPOSE_FILE), "--env-file", str(env_file), *args]
    # An empty environment: only the env file may supply values (a stray GRAFANA_ADMIN_PASSWORD must not).
    return subprocess.run(argv, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)


def _config(tmp_path: Path, *profile: str, **env: str) -> dict:
    result = _compose(_env_file(tmp_path, **env), *profile, "config", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_binary_is_the_go_binary():
    with compose_binary().open("rb") as f:
        assert f.read(4) == b"\x7fELF"


@pytest.mark.parametrize("profile", [(), ("--profile", "demo")], ids=["default", "demo"])
def test_config_is_valid(tmp_path, profile):
    result = _compose(_env_file(tmp_path), *profile, "config", "-q")
    assert result.returncode == 0, result.stderr


def test_missing_grafana_password_is_refused(tmp_path):
    result = _compose(_env_file(tmp_path, GRAFANA_ADMIN_PASSWORD=""), "config", "-q")
    assert result.returncode != 0
    assert "GRAFANA_ADMIN_PASSWORD" in result.stderr


def test_invalid_file_is_refused(tmp_path):
    """Guards the guard: the binary really rejects a broken file (the Python wrapper would not)."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  x:\n    image: busybox\n    healthcheck: {interval: notaduration}\n")
    result = subprocess.run(
        [str(compose_binary()), "-f", str(broken), "config", "-q"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0


def test_no_version_key_and_pinned_images():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    assert "version" not in raw
    images = {name: svc.get("image", "") for name, svc in raw["services"].items()}
    assert images["prometheus"] == "prom/prometheus:v2.55.1"
    assert images["alertmanager"].startswith("prom/alertmanager:v0.2")
    assert images["grafana"].startswith("grafana/grafana-oss:")
    for image in images.values():
        assert ":" in image and not image.endswith(":latest"), image


def test_services_and_profiles(tmp_path):
    default = _config(tmp_path)
    assert set(default["services"]) == CORE
    demo = _config(tmp_path, "--profile", "demo")
    assert set(demo["services"]) == CORE | {"llm-proxy-sim"}
    # The project image serves the sidecar, the bridge and the simulator, built from deploy/Dockerfile.
    for name in ("llm-exporter", "alert-bridge", "llm-proxy-sim"):
        build = demo["services"][name]["build"]
        assert build["dockerfile"] == "deploy/Dockerfile"
        assert Path(build["context"]) == DEPLOY.parent


def test_every_service_has_healthcheck_restart_and_named_volumes(tmp_path):
    cfg = _config(tmp_path, "--profile", "demo")
    for name, svc in cfg["services"].items():
        assert svc.get("healthcheck", {}).get("test"), name
        assert svc.get("restart") == "unless-stopped", name
    data_mounts = {
        "prometheus": "/prometheus",
        "alertmanager": "/alertmanager",
        "grafana": "/var/lib/grafana",
        "alert-bridge": "/var/lib/alert-bridge",
    }
    for name, target in data_mounts.items():
        mounts = {v["target"]: v for v in cfg["services"][name]["volumes"]}
        assert mounts[target]["type"] == "volume", name
        assert mounts[target]["source"] in cfg["volumes"]


def test_ports_bind_loopback_by_default_and_follow_bind_address(tmp_path):
    cfg = _config(tmp_path)
    published = {
        (name, p["target"]): p["host_ip"] for name, svc in cfg["services"].items() for p in svc.get("ports", [])
    }
    for key in (("grafana", 3000), ("prometheus", 9090), ("alertmanager", 9093)):
        assert published[key] == "127.0.0.1", key
    assert set(published.values()) == {"127.0.0.1"}
    moved = _config(tmp_path, BIND_ADDRESS="0.0.0.0")
    assert {p["host_ip"] for svc in moved["services"].values() for p in svc.get("ports", [])} == {"0.0.0.0"}


def test_prometheus_retention_admin_api_and_config_mounts(tmp_path):
    cfg = _config(tmp_path, PROMETHEUS_RETENTION="30d")
    prom = cfg["services"]["prometheus"]
    assert "--storage.tsdb.retention.time=30d" in prom["command"]
    assert "--web.enable-admin-api" in prom["command"]
    targets = {v["target"]: Path(v["source"]) for v in prom["volumes"] if v["type"] == "bind"}
    assert targets["/etc/prometheus"] == DEPLOY / "prometheus"
    assert targets["/etc/prometheus/secrets"] == DEPLOY / "secrets"
    am = {v["target"]: Path(v["source"]) for v in cfg["services"]["alertmanager"]["volumes"] if v["type"] == "bind"}
    assert am["/etc/alertmanager"] == DEPLOY / "alertmanager"
    assert am["/etc/alertmanager/secrets"] == DEPLOY / "secrets"
    default = _config(tmp_path)
    assert "--storage.tsdb.retention.time=15d" in default["services"]["prometheus"]["command"]


def test_sidecar_and_simulator_wiring(tmp_path):
    cfg = _config(tmp_path, "--profile", "demo")
    sidecar = cfg["services"]["llm-exporter"]
    assert sidecar["environment"]["LLM_PROXY_URL"] == "http://llm-proxy-sim:8000/metrics"
    assert sidecar["environment"]["EXPORTER_TOKEN_FILE"] == "/run/secrets/exporter_token"
    assert sidecar["environment"]["LLM_PROXY_TOKEN_FILE"] == "/run/secrets/llm_proxy_token"
    assert sidecar["extra_hosts"] == ["host.docker.internal=host-gateway"]
    sim = cfg["services"]["llm-proxy-sim"]
    assert sim["profiles"] == ["demo"]
    assert sim["environment"]["SIM_TOKEN_FILE"] == "/run/secrets/llm_proxy_token"
    assert sim["environment"]["SIM_LISTEN"] == "0.0.0.0:8000"
    assert sim["environment"]["SIM_SCENARIO"] == "demo"
    secrets = {name: Path(s["file"]) for name, s in cfg["secrets"].items()}
    names = ("llm_proxy_token", "exporter_token", "bridge_token", "slack_bot_token")
    assert secrets == {n: DEPLOY / "secrets" / n for n in names}
    bridge = cfg["services"]["alert-bridge"]["environment"]
    assert bridge["BRIDGE_TOKEN_FILE"] == "/run/secrets/bridge_token"
    assert bridge["SLACK_BOT_TOKEN_FILE"] == "/run/secrets/slack_bot_token"
    assert "SLACK_BOT_TOKEN" not in bridge  # only through the secret file
    assert bridge["PROMETHEUS_QUERY_URL"] == "http://prometheus:9090"  # the internal address under Compose


def test_no_secret_has_a_default(tmp_path):
    """Secrets reach the containers only from .env or token files, never from the Compose file itself."""
    cfg = _config(tmp_path, SLACK_WEBHOOK_URL="", DISCORD_WEBHOOK_URL="", SMTP_PASSWORD="")
    bridge = cfg["services"]["alert-bridge"]["environment"]
    for key in ("SLACK_WEBHOOK_URL", "DISCORD_WEBHOOK_URL", "SMTP_PASSWORD"):
        assert bridge[key] in ("", None), key
    assert cfg["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "test-password"


def test_env_example_names_every_variable_the_compose_file_uses():
    import re

    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE_FILE.read_text()))
    example = (DEPLOY / "env.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    missing = used - documented - {"LLM_MONITORING_VERSION"}
    assert not missing, f"not in env.example: {sorted(missing)}"
    operator_names = ("LLM_PROXY_URL", "LLM_PROXY_TOKEN", "PROMETHEUS_BEARER_TOKEN", "BRIDGE_TOKEN", "SMTP_HOST")
    assert set(operator_names) | {"GRAFANA_ADMIN_PASSWORD", "BIND_ADDRESS", "PROMETHEUS_RETENTION"} <= documented
    # Every variable carries a comment just above it.
    lines = example.splitlines()
    for i, line in enumerate(lines):
        if re.match(r"^[A-Z0-9_]+=", line):
            assert lines[i - 1].startswith("#"), line


def _credentials_files(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "credentials_file"]
        return found + [f for v in node.values() for f in _credentials_files(v)]
    if isinstance(node, list):
        return [f for v in node for f in _credentials_files(v)]
    return []


@pytest.mark.parametrize(("config", "service"), [("prometheus/prometheus.yml", "prometheus"),
                                                 ("alertmanager/alertmanager.yml", "alertmanager")])  # fmt: skip
def test_token_files_the_configs_name_are_mounted_and_written_by_setup(tmp_path, config, service):
    path = DEPLOY / config
    if not path.exists():
        pytest.skip(f"deploy/{config} has not landed yet")
    names = _credentials_files(yaml.safe_load(path.read_text()))
    assert names, f"no credentials_file in deploy/{config}"
    mounts = {v["target"]: v["source"] for v in _config(tmp_path)["services"][service]["volumes"]}
    config_dir = f"/etc/{service}"
    assert Path(mounts[config_dir]) == path.parent
    setup = (DEPLOY.parent / "scripts" / "setup.sh").read_text()
    for name in names:
        # Relative to the config file's directory, which Compose mounts with secrets/ beside it.
        assert name.startswith("secrets/") and "/" not in name.removeprefix("secrets/"), name
        assert Path(mounts[f"{config_dir}/secrets"]) == DEPLOY / "secrets"
        assert f"={name.removeprefix('secrets/')}" in setup, f"setup.sh does not write {name}"
