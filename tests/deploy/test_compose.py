"""The Compose file, validated by the real Compose v2 binary (no engine needed for `config`)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.deploy._stack_paths import DEPLOY, compose_binary

COMPOSE_FILE = DEPLOY / "docker-compose.yml"
CORE = {"llm-exporter", "alert-bridge", "prometheus", "alertmanager", "grafana"}


def _env_file(tmp_path: Path, **overrides: str) -> Path:
    """deploy/env.example with the secrets filled in, as scripts/setup.sh would leave deploy/.env; `overrides`
    replace a setting's line or are added (a commented-out setting is set)."""
    values = {
        "GRAFANA_ADMIN_PASSWORD": "test-password",
        "PROMETHEUS_BEARER_TOKEN": "t1",
        "BRIDGE_TOKEN": "t2",
        "LLM_PROXY_TOKEN": "t3",
    }
    values.update(overrides)
    lines, done = [], set()
    for line in (DEPLOY / "env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        if key in values and not line.startswith("#"):
            lines.append(f"{key}={values[key]}")
            done.add(key)
        else:
            lines.append(line)
    lines += [f"{k}={v}" for k, v in values.items() if k not in done]
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
    # The configs as scripts/setup.sh renders them (runbook base, fallback and watchdog receivers).
    assert targets["/etc/prometheus"] == DEPLOY / "rendered" / "prometheus"
    assert targets["/etc/prometheus/secrets"] == DEPLOY / "secrets"
    am = {v["target"]: Path(v["source"]) for v in cfg["services"]["alertmanager"]["volumes"] if v["type"] == "bind"}
    assert am["/etc/alertmanager"] == DEPLOY / "rendered" / "alertmanager"
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
    assert secrets == {n: DEPLOY / "secrets" / n for n in SECRET_FILES}
    bridge = cfg["services"]["alert-bridge"]["environment"]
    assert bridge["BRIDGE_TOKEN_FILE"] == "/run/secrets/bridge_token"
    assert bridge["SLACK_BOT_TOKEN_FILE"] == "/run/secrets/slack_bot_token"
    assert "SLACK_BOT_TOKEN" not in bridge  # only through the secret file
    assert bridge["PROMETHEUS_QUERY_URL"] == "http://prometheus:9090"  # the internal address under Compose


def test_grafana_reads_its_password_from_a_secret_file(tmp_path):
    grafana = _config(tmp_path)["services"]["grafana"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana["environment"]
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    assert [s["source"] for s in grafana["secrets"]] == ["grafana_admin_password"]


_ENV_LINE = re.compile(r"^(# )?([A-Z][A-Z0-9_]*)=", re.M)


def test_env_example_names_every_variable_the_compose_file_uses():
    text = COMPOSE_FILE.read_text()
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", text)) | set(re.findall(r"^ {6}([A-Z][A-Z0-9_]*):\s*$", text, re.M))
    example = (DEPLOY / "env.example").read_text()
    documented = {m[2] for m in _ENV_LINE.finditer(example)}
    missing = used - documented - {"LLM_MONITORING_VERSION"}
    assert not missing, f"not in env.example: {sorted(missing)}"
    operator_names = ("LLM_PROXY_URL", "LLM_PROXY_TOKEN", "PROMETHEUS_BEARER_TOKEN", "BRIDGE_TOKEN", "SMTP_HOST")
    assert set(operator_names) | {"GRAFANA_ADMIN_PASSWORD", "BIND_ADDRESS", "PROMETHEUS_RETENTION"} <= documented
    # Every variable (set, or shown commented out with its default) carries a comment of prose just above it.
    lines = example.splitlines()
    for i, line in enumerate(lines):
        if _ENV_LINE.match(line):
            assert lines[i - 1].startswith("#") and not _ENV_LINE.match(lines[i - 1]), line
    # Files the programs read are named by their path in the mounted deploy/config/.
    for m in re.finditer(r"^# ([A-Z_]+(?:_FILE|_CONFIG|_DIR))=(.*)$", example, re.M):
        assert m[2].startswith("/etc/llm-monitoring/"), m[0]


# --- Every documented setting reaches its service (the list is read from the README's tables) ---------------

README = DEPLOY.parent / "README.md"
# Secret files Compose mounts (scripts/setup.sh writes each one, empty when its setting is unset).
SECRET_FILES = (
    "llm_proxy_token", "exporter_token", "bridge_token", "slack_webhook_url", "discord_webhook_url",
    "teams_webhook_url", "webhook_url", "smtp_password", "grafana_admin_password", "slack_bot_token",
)  # fmt: skip
# Set by Compose itself, whatever .env says: addresses, data paths and token files inside the containers.
OWNED = {
    "llm-exporter": {
        "EXPORTER_LISTEN": "0.0.0.0:9470",
        "EXPORTER_TOKEN_FILE": "/run/secrets/exporter_token",
        "LLM_PROXY_TOKEN_FILE": "/run/secrets/llm_proxy_token",
    },
    "alert-bridge": {
        "BRIDGE_LISTEN": "0.0.0.0:9095",
        "BRIDGE_TOKEN_FILE": "/run/secrets/bridge_token",
        "BRIDGE_DATA_DIR": "/var/lib/alert-bridge",
    },
}
# Secrets: only their files reach the container (`VAR_FILE` names a Compose secret), never the value.
SECRET_VARS = {"LLM_PROXY_TOKEN", "EXPORTER_TOKEN", "BRIDGE_TOKEN", "SLACK_WEBHOOK_URL", "DISCORD_WEBHOOK_URL",
               "TEAMS_WEBHOOK_URL", "WEBHOOK_URL", "SMTP_PASSWORD", "SLACK_BOT_TOKEN"}  # fmt: skip
SECTIONS = {"llm-exporter": "Exporter sidecar", "alert-bridge": "Alert bridge"}


def readme_variables(section: str) -> list[str]:
    """The variables in the first column of the README's tables in `## {section}`: `A` / `A_FILE`, `A` (`_FILE`)."""
    text = README.read_text()
    start = text.index(f"\n## {section}")
    end = text.find("\n## ", start + 1)
    names: list[str] = []
    for line in text[start : end if end > 0 else None].splitlines():
        if not line.startswith("| `"):
            continue
        previous = None
        for token in re.findall(r"`([^`]+)`", line.split("|")[1]):
            if token == "_FILE" and previous:
                names.append(previous + "_FILE")
            elif re.fullmatch(r"[A-Z][A-Z0-9_]*", token):
                names.append(previous := token)
    return names


def test_readme_tables_are_read():
    exporter, bridge = readme_variables(SECTIONS["llm-exporter"]), readme_variables(SECTIONS["alert-bridge"])
    assert {"LLM_PROXY_URL", "LLM_PROXY_TOKEN_FILE", "EXPORTER_WINDOWS", "LLM_DAILY_BUDGET_USD"} <= set(exporter)
    assert {"BRIDGE_MAX_QUEUE", "BRIDGE_RETRY_MAX", "SMTP_PASSWORD_FILE", "TEAMS_WEBHOOK_URL_FILE"} <= set(bridge)
    assert {"EMAIL_TO", "RUNBOOK_BASE_URL", "BRIDGE_PUBLIC_URL", "ALERTMANAGER_URL"} <= set(bridge)


def _sample(var: str) -> str:
    return f"s-{var.lower()}-1,2:3/4"  # commas, colons and slashes must arrive as they are


@pytest.mark.parametrize("service", SECTIONS)
def test_every_documented_setting_reaches_its_service(tmp_path, service):
    """Set in .env, each setting of the README's table arrives unchanged; unset, it is not passed at all (the
    program's default applies), unless Compose owns it; secrets arrive only as files."""
    names = readme_variables(SECTIONS[service])
    passed = [n for n in names if n not in OWNED[service] and n not in SECRET_VARS and not n.endswith("_FILE")]
    (tmp_path / "set").mkdir()
    (tmp_path / "unset").mkdir()
    set_all = _config(tmp_path / "set", **{n: _sample(n) for n in names})
    env = set_all["services"][service]["environment"]
    wrong = {n: env.get(n) for n in passed if env.get(n) != _sample(n)}
    assert not wrong, f"settings that do not reach {service} from deploy/.env: {wrong}"
    for name, value in OWNED[service].items():
        assert env[name] == value, name
    mounted = {s["source"] for s in set_all["services"][service].get("secrets", [])}
    for name in SECRET_VARS & set(names):
        assert name not in env, f"{name} travels as an environment value"
        if name.removesuffix("_TOKEN") in ("EXPORTER", "LLM_PROXY", "BRIDGE"):
            continue  # tokens: checked in OWNED
        assert env[f"{name}_FILE"] == f"/run/secrets/{name.lower()}", name
        assert name.lower() in mounted, name
    text = json.dumps(set_all)
    assert not [n for n in SECRET_VARS & set(names) if _sample(n) in text], "a secret value is in the config"

    # With env.example as it is, a setting it leaves commented out is not passed: the program's default applies.
    unset = _config(tmp_path / "unset")["services"][service]["environment"]
    example = (DEPLOY / "env.example").read_text()
    for name in passed:
        if not re.search(rf"^{name}=", example, re.M) and name not in (
            "GRAFANA_URL",
            "PROMETHEUS_URL",
            "ALERTMANAGER_URL",
        ):
            assert unset.get(name) is None, f"{name} is passed as {unset.get(name)!r} although unset"


def test_config_dir_is_mounted_read_only_in_the_sidecar_and_the_bridge(tmp_path):
    cfg = _config(tmp_path)
    for service in ("llm-exporter", "alert-bridge"):
        (mount,) = [v for v in cfg["services"][service]["volumes"] if v["target"] == "/etc/llm-monitoring"]
        assert mount["type"] == "bind" and mount["read_only"] is True, service
        assert Path(mount["source"]) == DEPLOY / "config"


def _as_on_the_host(service: dict, tmp_path: Path) -> dict[str, str]:
    """The service's environment from Compose's configuration, its container paths mapped into tmp_path: the
    config mount onto tmp_path/config, the secrets onto files in tmp_path/secrets, the data dir onto tmp_path."""
    (tmp_path / "config").mkdir(exist_ok=True)
    secrets_dir = tmp_path / "secrets"
    secrets_dir.mkdir(exist_ok=True)
    for s in service.get("secrets", []):
        # The project's own tokens get a value; channel secrets stay empty (unset), as setup.sh leaves them.
        own = s["source"] in ("bridge_token", "exporter_token", "llm_proxy_token")
        (secrets_dir / s["source"]).write_text("token-value" if own else "")
    env = {}
    for key, value in service["environment"].items():
        if value is None:
            continue
        value = value.replace("/etc/llm-monitoring", str(tmp_path / "config")).replace("/run/secrets", str(secrets_dir))
        env[key] = value.replace("/var/lib/alert-bridge", str(tmp_path / "data"))
    return env


@pytest.mark.parametrize(
    ("service", "var", "argv"),
    [
        ("llm-exporter", "EXPORTER_PRICES_FILE", ["llm-exporter"]),
        ("llm-exporter", "LLM_PROXY_CA_FILE", ["llm-exporter"]),
        ("llm-exporter", "EXPORTER_MAPPING", ["llm-exporter"]),
        ("alert-bridge", "BRIDGE_CONFIG", ["alert-bridge", "check-config"]),
        ("alert-bridge", "BRIDGE_TEMPLATES_DIR", ["alert-bridge", "check-config"]),
    ],
)
def test_a_missing_file_in_the_config_dir_stops_the_service_naming_variable_and_path(tmp_path, service, var, argv):
    from tests.deploy._stack_paths import venv_bin

    cfg = _config(tmp_path, **{var: "/etc/llm-monitoring/not-there.yml"})
    env = _as_on_the_host(cfg["services"][service], tmp_path)
    missing = tmp_path / "config" / "not-there.yml"
    assert env[var] == str(missing)
    result = subprocess.run(
        [str(venv_bin(argv[0])), *argv[1:]],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert var in result.stderr and str(missing) in result.stderr, result.stderr


def test_a_file_in_the_config_dir_is_used(tmp_path):
    """The positive case: the bridge's routing YAML put in deploy/config/ is what the bridge loads."""
    from tests.deploy._stack_paths import venv_bin

    cfg = _config(tmp_path, BRIDGE_CONFIG="/etc/llm-monitoring/bridge.yml")
    env = _as_on_the_host(cfg["services"]["alert-bridge"], tmp_path)
    (tmp_path / "config" / "bridge.yml").write_text("channels:\n  from-config-dir: {type: console}\n")
    result = subprocess.run(
        [str(venv_bin("alert-bridge")), "check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "from-config-dir" in result.stdout


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
    names = _credentials_files(yaml.safe_load(path.read_text()))
    assert names, f"no credentials_file in deploy/{config}"
    mounts = {v["target"]: v["source"] for v in _config(tmp_path)["services"][service]["volumes"]}
    config_dir = f"/etc/{service}"
    assert Path(mounts[config_dir]) == DEPLOY / "rendered" / service  # rendered by setup.sh from deploy/<service>
    setup = (DEPLOY.parent / "scripts" / "setup.sh").read_text()
    for name in names:
        # Relative to the config file's directory, which Compose mounts with secrets/ beside it.
        assert name.startswith("secrets/") and "/" not in name.removeprefix("secrets/"), name
        assert Path(mounts[f"{config_dir}/secrets"]) == DEPLOY / "secrets"
        assert f"={name.removeprefix('secrets/')}" in setup, f"setup.sh does not write {name}"
