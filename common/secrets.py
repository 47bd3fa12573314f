"""Secrets from the environment or from files (`NAME_FILE`). PLACEHOLDER until the common branch lands."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from common.errors import ConfigError

__all__ = ["env_value", "read_secret"]


def env_value(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name) or None


def read_secret(env: Mapping[str, str], name: str) -> str | None:
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text().strip() or None
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
