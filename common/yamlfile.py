"""YAML files read the same way everywhere: unreadable or invalid YAML is a ConfigError naming the file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from common.errors import ConfigError

__all__ = ["read_yaml"]


def read_yaml(path: Path) -> Any:
    """The parsed document of `path` (None for an empty file)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None)
        raise ConfigError(f"{path}: invalid YAML{at}{f': {problem}' if problem else ''}") from None
