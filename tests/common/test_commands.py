"""The three commands: --version from the package metadata, bare bool switches, empty variables keep defaults."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest

from bridge.channels import CHANNEL_TYPES
from bridge.config import load_config
from exporter.config import VARIABLES
from exporter.config import load_config as exporter_load
from tests.common.test_config_values import _Recording

URL = {"LLM_PROXY_URL": "http://127.0.0.1:9/metrics"}


def bridge_load(env):
    return load_config(env, CHANNEL_TYPES)


@pytest.mark.parametrize(
    ("module", "program"),
    [("exporter", "llm-exporter"), ("exporter.simulator", "llm-proxy-sim"), ("bridge", "alert-bridge")],
)
def test_version(module, program):
    done = subprocess.run([sys.executable, "-m", module, "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{program} (llm-monitoring {metadata.version('llm-monitoring')})"


def test_tls_insecure_is_a_bare_switch_and_still_takes_a_value():
    assert exporter_load(["--proxy-tls-insecure"], URL).upstream_tls_insecure is True
    assert exporter_load(["--proxy-tls-insecure", "false"], URL).upstream_tls_insecure is False
    assert exporter_load(["--proxy-tls-insecure", "--poll-interval", "5s"], URL).poll_interval == 5.0
    assert exporter_load([], {**URL, "LLM_PROXY_TLS_INSECURE": "true"}).upstream_tls_insecure is True
    assert exporter_load([], URL).upstream_tls_insecure is False


def test_empty_variables_keep_the_defaults():
    # Compose passes every variable it knows and the operator left unset as an empty string.
    exporter_empty = {v.env: "" for v in VARIABLES if v.env != "LLM_PROXY_URL"}
    assert repr(exporter_load([], {**URL, **exporter_empty})) == repr(exporter_load([], URL))
    assert exporter_load([], {**URL, **exporter_empty}) == exporter_load([], URL)
    read = _Recording({})
    bridge_load(read)  # every variable the bridge looks at, set to ""
    assert "BRIDGE_MAX_BODY" in read.read and "SLACK_WEBHOOK_URL_FILE" in read.read
    bridge_empty = dict.fromkeys(read.read, "")
    assert bridge_load(bridge_empty) == bridge_load({})
