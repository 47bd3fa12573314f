"""Every alert's runbook link, rendered as scripts/setup.sh does, resolves on a running bridge to its anchor."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path
from urllib.parse import urldefrag

import pytest
import yaml

from stack.render import DEFAULT_RUNBOOK_BASE, RenderError, render_deploy, runbook_base_from_env
from tests.deploy._stack_paths import DEPLOY, venv_bin
from tests.realbin import free_port, run_process


def _alerts(rules_dir: Path) -> dict[str, str]:
    """alert name → runbook_url, from every rule file."""
    out = {}
    for path in sorted(rules_dir.glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    out[rule["alert"]] = rule["annotations"]["runbook_url"]
    return out


def test_every_runbook_link_resolves_on_a_running_bridge(tmp_path):
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    render_deploy(DEPLOY, tmp_path / "rendered", {"BRIDGE_PUBLIC_URL": public})
    links = _alerts(tmp_path / "rendered" / "prometheus" / "rules")
    assert len(links) >= 14
    env = {
        "BRIDGE_LISTEN": f"127.0.0.1:{port}",
        "BRIDGE_TOKEN": "a-token-the-links-do-not-need",
        "BRIDGE_DATA_DIR": str(tmp_path / "data"),
    }
    workdir = tmp_path / "elsewhere"  # not the repository: the page comes from the installed package
    workdir.mkdir()
    argv = [str(venv_bin("alert-bridge"))]
    with run_process(argv, tmp_path / "bridge.log", f"{public}/readyz", cwd=workdir, env=env, timeout=20):
        pages: dict[str, str] = {}
        for alert, link in links.items():
            url, fragment = urldefrag(link)
            assert url == f"{public}/runbooks", (alert, link)
            assert fragment == alert.lower(), (alert, link)
            if url not in pages:
                with urllib.request.urlopen(url, timeout=10) as r:  # no Authorization header
                    assert r.status == 200
                    pages[url] = r.read().decode()
            ids = set(re.findall(r'\bid="([^"]+)"', pages[url]))
            assert fragment in ids, f"{alert}: no anchor #{fragment} on {url}"


def test_runbook_base_defaults_and_overrides():
    assert runbook_base_from_env({}) == DEFAULT_RUNBOOK_BASE
    assert runbook_base_from_env({"BRIDGE_PUBLIC_URL": "https://alerts.example.com/"}) == (
        "https://alerts.example.com/runbooks"
    )
    both = {"BRIDGE_PUBLIC_URL": "https://alerts.example.com", "RUNBOOK_BASE_URL": "https://wiki.example.com/llm/"}
    assert runbook_base_from_env(both) == "https://wiki.example.com/llm"
    with pytest.raises(RenderError, match="RUNBOOK_BASE_URL"):
        runbook_base_from_env({"RUNBOOK_BASE_URL": "wiki/llm"})
    # The rules in git point at the bridge's page at env.example's BRIDGE_PUBLIC_URL.
    example = (DEPLOY / "env.example").read_text()
    (public,) = re.findall(r"^BRIDGE_PUBLIC_URL=(.*)$", example, re.M)
    assert f"{public}/runbooks" == DEFAULT_RUNBOOK_BASE


def test_an_operator_wiki_is_set_once_for_every_alert(tmp_path):
    render_deploy(DEPLOY, tmp_path / "out", {"RUNBOOK_BASE_URL": "https://wiki.example.com/llm-runbooks"})
    links = _alerts(tmp_path / "out" / "prometheus" / "rules")
    assert links and all(u == f"https://wiki.example.com/llm-runbooks#{a.lower()}" for a, u in links.items())
    # Only the runbook base changed: the rest of every rule file is as in git.
    for path in (DEPLOY / "prometheus" / "rules").glob("*.yml"):
        rendered = (tmp_path / "out" / "prometheus" / "rules" / path.name).read_text()
        assert rendered.replace("https://wiki.example.com/llm-runbooks", DEFAULT_RUNBOOK_BASE) == path.read_text()
