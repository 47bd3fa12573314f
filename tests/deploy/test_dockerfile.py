"""The project image's Dockerfile: hadolint clean, non-root, with a healthcheck."""

from __future__ import annotations

import subprocess

from tests.deploy._stack_paths import DEPLOY, REPO, venv_bin

DOCKERFILE = DEPLOY / "Dockerfile"


def test_hadolint_clean():
    result = subprocess.run(
        [str(venv_bin("hadolint")), "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_problems(tmp_path):
    """Guards the guard: a root image on :latest is flagged."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install -y curl\n")
    result = subprocess.run([str(venv_bin("hadolint")), str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def test_slim_base_non_root_user_and_healthcheck():
    text = DOCKERFILE.read_text()
    assert text.count("\nFROM ") + text.startswith("FROM ") >= 1
    base = next(line.split()[1] for line in text.splitlines() if line.startswith("FROM "))
    assert base.startswith("python:3.11") and "slim" in base
    user = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert user and not user[-1].startswith(("root", "0"))
    assert "\nHEALTHCHECK " in text


def test_dockerignore_keeps_the_context_small():
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything is excluded unless listed
    for needed in ("!pyproject.toml", "!common/", "!exporter/", "!bridge/"):
        assert needed in ignore
