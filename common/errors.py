"""The one configuration error type of every program in the project."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """The configuration is unusable; the message names the variable or file and key, never a secret value."""
