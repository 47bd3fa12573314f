"""GET /runbooks: the packaged runbooks as HTML, an anchor per alert, open without the token, from any directory."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from bridge.app import create_app
from bridge.channels import CHANNEL_TYPES
from bridge.config import load_config

REPO = Path(__file__).resolve().parents[2]


def _alert_names() -> set[str]:
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "rules" / "alerts.yml").read_text())
    return {rule["alert"] for group in rules["groups"] for rule in group["rules"]}


async def test_runbooks_page_has_an_anchor_per_alert_and_needs_no_token(tmp_path, aiohttp_client, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the page comes from the package, not from the working directory
    env = {"BRIDGE_TOKEN": "secret-token", "BRIDGE_DATA_DIR": str(tmp_path / "data")}
    client = await aiohttp_client(create_app(load_config(env, CHANNEL_TYPES)))
    resp = await client.get("/runbooks")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Content-Security-Policy"].startswith("default-src 'none'")
    page = await resp.text()
    ids = set(re.findall(r'<h[1-6] id="([^"]+)"', page))
    missing = {name for name in _alert_names() if name.lower() not in ids}
    assert not missing, f"no anchor for {sorted(missing)}"
    assert "<table>" in page and "<pre><code" in page  # tables and fenced code are rendered, not left as text
    assert "secret-token" not in page
    # The token still guards everything else.
    assert (await client.get("/dead-letters")).status == 401
    assert (await client.get("/runbooks/")).status == 200


def test_runbooks_ship_as_package_data():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "runbooks.md" in pyproject["tool"]["setuptools"]["package-data"]["bridge"]
    assert (REPO / "bridge" / "runbooks.md").is_file()


def test_public_url_is_read_without_trailing_slash():
    assert (
        load_config({"BRIDGE_PUBLIC_URL": "https://alerts.example.com/"}, CHANNEL_TYPES).public_url
        == "https://alerts.example.com"
    )
    assert load_config({"BRIDGE_PUBLIC_URL": ""}, CHANNEL_TYPES).public_url is None
