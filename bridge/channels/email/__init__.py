"""Email: multipart/alternative over SMTP, threaded per alert group; SMTP_* fill in what a channel omits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bridge.channels.email.channel import EmailChannel
from bridge.channels.email.settings import EmailSettings
from bridge.model import ChannelType
from common.secrets import env_value, read_secret

__all__ = ["EMAIL", "EmailChannel", "EmailSettings"]

# Settings key → the variable it comes from, to name in errors.
_VARIABLES = {
    "host": "SMTP_HOST",
    "port": "SMTP_PORT",
    "username": "SMTP_USERNAME",
    "password": "SMTP_PASSWORD",
    "tls": "SMTP_TLS",
    "from": "EMAIL_FROM",
    "from_": "EMAIL_FROM",
    "to": "EMAIL_TO",
}


def _defaults(env: Mapping[str, str]) -> dict[str, Any]:
    """SMTP_* and EMAIL_FROM as settings keys, for the environment's channel and YAML email channels."""
    out: dict[str, Any] = {}
    for key in ("host", "port", "username", "tls", "from"):
        value = env_value(env, _VARIABLES[key])
        if value is not None:
            out[key] = value.lower() if key == "tls" else value
    password = read_secret(env, "SMTP_PASSWORD")
    if password:
        out["password"] = password
    return out


def _from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]] | None:
    # SMTP_HOST alone only serves YAML email channels; EMAIL_TO makes the environment's own "email" channel.
    to = env_value(env, "EMAIL_TO")
    if to is None:
        return None
    return {**_defaults(env), "to": [a.strip() for a in to.split(",") if a.strip()]}, _VARIABLES


EMAIL = ChannelType(
    name="email",
    settings=EmailSettings,
    create=EmailChannel,
    from_env=_from_env,
    env_defaults=_defaults,
    placeholder={"host": "localhost", "from": "alert-bridge@localhost", "to": ["oncall@example.invalid"]},
)
