"""Plain and secret settings from the environment: `NAME`, or the file named by `NAME_FILE`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from common.errors import ConfigError

__all__ = ["env_value", "read_secret"]


def env_value(env: Mapping[str, str | None], name: str) -> str | None:
    """The variable `name`, None when unset or empty (Compose passes an unset variable as an empty string)."""
    value = env.get(name)
    return value if value else None


def read_secret(env: Mapping[str, str | None], name: str) -> str | None:
    """`NAME`, else the stripped content of the file named by `NAME_FILE`; None when neither holds anything.

    An empty variable or a whitespace-only file means unset; surrounding whitespace is never part of a token or
    URL, so it is stripped from both. Errors name the variable and the path, never the content.
    """
    direct, path = env_value(env, name), env_value(env, f"{name}_FILE")
    if direct is not None and path is not None:
        raise ConfigError(f"{name} and {name}_FILE are both set: set only one")
    if path is not None:
        try:
            content = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not readable as UTF-8 text"
            raise ConfigError(f"{name}_FILE: cannot read {path}: {reason}") from None
        return content.strip() or None
    if direct is not None:
        return direct.strip() or None
    return None
