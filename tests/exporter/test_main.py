"""The `llm-exporter` process for real: serves, logs JSON lines, keeps tokens out of them, stops cleanly."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

import aiohttp

from tests.exporter.fake_upstream import Traffic
from tests.realbin import free_port


async def test_process_serves_and_logs_json_without_secrets(upstream, tmp_path):
    upstream.body = Traffic({"gpt-4o": 20.0}).body
    token_file = tmp_path / "token"
    token_file.write_text("sidecar-secret\n")
    port = free_port()
    env = {
        **os.environ,
        "LLM_PROXY_URL": upstream.url,
        "LLM_PROXY_TOKEN": "upstream-secret",
        "EXPORTER_TOKEN_FILE": str(token_file),
        "EXPORTER_LISTEN": f"127.0.0.1:{port}",
        "EXPORTER_POLL_INTERVAL": "0.2",
        "EXPORTER_WINDOWS": "1s,5s",
    }
    proc = subprocess.Popen([sys.executable, "-m", "exporter"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 20
            while True:
                assert proc.poll() is None, proc.stderr.read()
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 401
            async with session.get(
                f"http://127.0.0.1:{port}/metrics", headers={"Authorization": "Bearer sidecar-secret"}
            ) as resp:
                text = await resp.text()
            assert 'llm_request_failure_ratio{model="gpt-4o",window="1s"}' in text
            upstream.token = "rotated"  # make it log a failure
            await asyncio.sleep(0.5)
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode in (0, -15)
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    messages = [entry["msg"] for entry in lines]
    assert any("starting" in m for m in messages)
    assert any(e["msg"] == "upstream scrape failed" and e["reason"] == "http_401" for e in lines)
    assert "upstream-secret" not in stderr and "sidecar-secret" not in stderr
