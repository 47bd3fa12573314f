"""The `alert-bridge` command as an operator runs it: check-config, render, send-test, config errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
from aiohttp import web

from tests.bridge.test_dispatch import Destination

SAMPLES = Path(__file__).resolve().parents[2] / "bridge" / "samples"
FIRING = SAMPLES / "alertmanager-0.25-firing.json"


async def run(tmp_path: Path, *args: str, **env: str) -> tuple[int, str, str]:
    """Run `python -m bridge ARGS` with only these BRIDGE_*/channel variables set."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("BRIDGE_", "SLACK_", "DISCORD_", "SMTP_", "EMAIL_", "WEBHOOK_"))
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bridge",
        *args,
        env={**base, "BRIDGE_DATA_DIR": str(tmp_path / "data"), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=tmp_path,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def hook(aiohttp_server):
    dest = Destination()
    app = web.Application()
    app.router.add_post("/hook/secret-part", dest.handle)
    server = await aiohttp_server(app)
    dest.url = str(server.make_url("/hook/secret-part"))
    return dest


async def test_check_config_reports_channels_and_renders_samples(tmp_path, hook):
    config = tmp_path / "bridge.yml"
    config.write_text(
        f'channels:\n  ops: {{type: webhook, url: "{hook.url}"}}\n  screen: {{type: console}}\n'
        "routes:\n  - match: {severity: critical}\n    channels: [ops]\n"
        "default_channels: [screen]\n"
    )
    code, out, err = await run(tmp_path, "check-config", BRIDGE_CONFIG=str(config))
    assert code == 0, err
    assert "channel ops: webhook" in out and "channel screen: console" in out
    assert "route 0: severity=critical → ops" in out
    assert "ok   ops large" in out and "configuration OK" in out
    assert "secret-part" not in out + err
    assert hook.requests == []  # checking sends nothing


@pytest.mark.parametrize(
    ("env", "names"),
    [
        pytest.param({"BRIDGE_MAX_BODY": "huge"}, "BRIDGE_MAX_BODY", id="env"),
        pytest.param({"WEBHOOK_URL": "mailto:x"}, "WEBHOOK_URL", id="url"),
    ],
)
async def test_config_errors_exit_2_naming_the_variable(tmp_path, env, names):
    for command in ("check-config", "serve"):
        code, _, err = await run(tmp_path, command, **env)
        assert code == 2
        assert names in err and "configuration error" in err


async def test_bad_yaml_exits_2_naming_file_and_key(tmp_path):
    config = tmp_path / "bridge.yml"
    config.write_text("channels:\n  ops: {type: webhook}\n")
    code, _, err = await run(tmp_path, "check-config", BRIDGE_CONFIG=str(config))
    assert code == 2 and str(config) in err and "channels.ops.url" in err


async def test_render_console_prints_the_message(tmp_path):
    code, out, err = await run(tmp_path, "render", "--channel", "console", str(FIRING))
    assert code == 0, err
    assert "DemoFailing" in out and "FIRING" in out


async def test_render_webhook_prints_the_original_payload(tmp_path):
    code, out, err = await run(tmp_path, "render", "--channel", "webhook", str(FIRING))
    assert code == 0, err
    assert json.loads(out) == json.loads(FIRING.read_text())


@pytest.mark.parametrize(
    ("content", "message"),
    [pytest.param("{", "not valid JSON", id="json"), pytest.param('{"version": "4"}', "alerts", id="shape")],
)
async def test_render_bad_payload_exits_2(tmp_path, content, message):
    (tmp_path / "p.json").write_text(content)
    code, _, err = await run(tmp_path, "render", "--channel", "console", str(tmp_path / "p.json"))
    assert code == 2 and message in err


async def test_render_unknown_channel_exits_2(tmp_path):
    code, _, err = await run(tmp_path, "render", "--channel", "pager", str(FIRING))
    assert code == 2 and "pager" in err


async def test_send_test_delivers_a_sample(tmp_path, hook):
    code, out, err = await run(tmp_path, "send-test", "--channel", "webhook", WEBHOOK_URL=hook.url)
    assert code == 0, err
    assert "webhook" in out and "delivered" in out and "secret-part" not in out
    [body] = hook.bodies
    assert body["alerts"][0]["labels"]["alertname"] == "AlertBridgeSendTest"


async def test_send_test_reports_a_failure(tmp_path, hook):
    hook.script = [(403, {})]
    code, out, _ = await run(tmp_path, "send-test", WEBHOOK_URL=hook.url)
    assert code == 1 and "failed" in out and "http_403" in out


async def test_send_test_unknown_channel(tmp_path, hook):
    code, _, err = await run(tmp_path, "send-test", "--channel", "nope", WEBHOOK_URL=hook.url)
    assert code == 2 and "nope" in err
