"""The llm-proxy-sim command: --help, configuration errors naming the variable, a real process serving."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from exporter.simulator.config import ConfigError, load_settings
from tests.realbin import free_port, wait_http

TOKEN = "cli-secret-9a8b7c"


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "exporter.simulator", *args], capture_output=True, text=True, env=full_env, timeout=30
    )


def test_help_lists_flags_variables_and_the_timeline():
    done = _run("--help")
    assert done.returncode == 0
    for word in ("--listen", "SIM_LISTEN", "SIM_TOKEN_FILE", "SIM_SCENARIO", "SIM_SPEED", "SIM_SERIES", "demo"):
        assert word in done.stdout
    assert "60-72 failure-burst" in done.stdout


@pytest.mark.parametrize(
    "args, env, names",
    [
        pytest.param([], {"SIM_SCENARIO": "nope"}, "SIM_SCENARIO", id="unknown-scenario-env"),
        pytest.param(["--scenario", "nope"], {}, "SIM_SCENARIO", id="unknown-scenario-flag"),
        pytest.param([], {"SIM_LISTEN": "localhost"}, "SIM_LISTEN", id="listen-without-port"),
        pytest.param(["--listen", "127.0.0.1:99999"], {}, "SIM_LISTEN", id="port-out-of-range"),
        pytest.param([], {"SIM_LISTEN": "127.0.0.1:http"}, "SIM_LISTEN", id="port-not-number"),
        pytest.param([], {"SIM_SPEED": "0"}, "SIM_SPEED", id="speed-zero"),
        pytest.param(["--speed", "-2"], {}, "SIM_SPEED", id="speed-negative"),
        pytest.param([], {"SIM_SPEED": "fast"}, "SIM_SPEED", id="speed-not-number"),
        pytest.param([], {"SIM_SPEED": "inf"}, "SIM_SPEED", id="speed-infinite"),
        pytest.param([], {"SIM_SERIES": "-1"}, "SIM_SERIES", id="series-negative"),
        pytest.param([], {"SIM_SERIES": "1e5"}, "SIM_SERIES", id="series-not-integer"),
        pytest.param([], {"SIM_TOKEN_FILE": "/nonexistent/token"}, "SIM_TOKEN_FILE", id="token-file-missing"),
    ],
)
def test_bad_config_exits_non_zero_naming_the_variable(args, env, names):
    done = _run(*args, env=env)
    assert done.returncode != 0
    assert names in done.stderr


def test_empty_token_file_means_unset_and_two_token_sources_are_rejected(tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    # Empty means unset everywhere (Compose passes unset variables as empty strings): open, with a warning.
    assert load_settings([], {"SIM_TOKEN_FILE": str(empty)}).token is None
    assert load_settings([], {"SIM_TOKEN": "", "SIM_LISTEN": "", "SIM_SPEED": ""}) == load_settings([], {})
    good = tmp_path / "token"
    good.write_text(TOKEN + "\n")
    with pytest.raises(ConfigError, match="only one") as info:
        load_settings([], {"SIM_TOKEN_FILE": str(good), "SIM_TOKEN": TOKEN})
    assert TOKEN not in str(info.value)
    settings = load_settings(["--token-file", str(good)], {})
    assert settings.token == TOKEN and TOKEN not in repr(settings)


def test_defaults_and_flags_override_environment():
    s = load_settings([], {})
    assert (s.host, s.port, s.scenario, s.speed, s.series, s.token) == ("127.0.0.1", 8000, "steady", 1.0, 0, None)
    s = load_settings(["--speed", "60", "--listen", "[::1]:9000"], {"SIM_SPEED": "2", "SIM_SCENARIO": "demo"})
    assert (s.host, s.port, s.speed, s.scenario) == ("::1", 9000, 60.0, "demo")


def test_real_process_serves_with_token_file_and_never_logs_the_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIM_")}
    env.update({"SIM_TOKEN_FILE": str(token_file), "SIM_LISTEN": f"127.0.0.1:{port}", "SIM_SCENARIO": "demo"})
    log = tmp_path / "sim.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "exporter.simulator", "--speed", "60"], stderr=out, env=env)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
        assert info.value.code == 401
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=5) as r:
            assert b'llm_requests_total{model="gpt-4o"}' in r.read()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/scenario?token={TOKEN}",
            data=json.dumps({"scenario": "token-surge"}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=5) as r:
            assert json.load(r)["scenario"] == "token-surge"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = log.read_text().splitlines()
    assert lines, "expected JSON log lines"
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert any(r.get("path") == "/metrics" and r.get("status") == 401 for r in records)
    assert any(r.get("msg") == "scenario switched" and r.get("to") == "token-surge" for r in records)
    assert TOKEN not in log.read_text()
