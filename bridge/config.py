"""Configuration: the environment, and the optional YAML file of channels and routes, read into one object.

Every error is a ConfigError whose message names the variable or the file and key, never a secret value.
Channel types come from the caller (the registry), so this module knows no channel.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from bridge.model import ChannelSettings, ChannelType
from bridge.routing import ROUTE_NAME, Route, Routing
from common.durations import parse_duration
from common.errors import ConfigError
from common.secrets import env_value, read_secret
from common.sizes import parse_size
from common.yamlfile import read_yaml

__all__ = ["BridgeConfig", "ConfigError", "load_config"]

_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass(frozen=True)
class BridgeConfig:
    """Everything the bridge runs with; built once by load_config and replaced whole on reload."""

    host: str = "0.0.0.0"
    port: int = 9095
    token: str | None = field(default=None, repr=False)
    data_dir: Path = Path("./data")
    max_body: int = 16 * 1024 * 1024
    dedupe_window: float = 120.0
    max_queue: int = 10_000
    max_delivery_age: float = 24 * 3600.0
    retry_initial: float = 1.0
    retry_max: float = 300.0
    shutdown_grace: float = 10.0
    max_parts: int = 3
    console: str = "auto"
    config_file: Path | None = None
    templates_dir: Path | None = None
    alertmanager_url: str | None = None
    grafana_url: str | None = None
    prometheus_url: str | None = None
    runbook_base_url: str | None = None
    prometheus_query_url: str | None = None  # where charts and firing history are queried; else prometheus_url
    public_url: str | None = None  # BRIDGE_PUBLIC_URL: the bridge as people and chat services reach it
    chart_timeout: float = 3.0
    timezone: tzinfo | None = None  # BRIDGE_TIMEZONE; None: UTC
    log_level: str = "INFO"
    channels: Mapping[str, ChannelSettings] = field(default_factory=dict, repr=False)
    routing: Routing = field(default_factory=Routing)

    def secrets(self) -> list[str]:
        """Every secret value the configuration holds, for log redaction."""
        values = [self.token or ""]
        for settings in self.channels.values():
            for name, info in type(settings).model_fields.items():
                value = getattr(settings, name)
                if not info.repr and isinstance(value, str):
                    values.append(value)
                elif not info.repr and isinstance(value, dict):
                    values += [v for v in value.values() if isinstance(v, str)]
        return [v for v in values if v]


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env_value(env, name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}: not an integer: {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name}: must be at least {minimum}, not {value}")
    return value


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"BRIDGE_LISTEN: expected host:port, not {raw!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _http(env: Mapping[str, str], name: str) -> str | None:
    value = env_value(env, name)
    if value is not None and not re.match(r"https?://[^/?#\s]+", value):
        raise ConfigError(f"{name}: must be an http:// or https:// URL, not {value[:60]!r}")
    return value.rstrip("/") if value else None


def _timezone(env: Mapping[str, str]) -> tzinfo | None:
    name = env_value(env, "BRIDGE_TIMEZONE")
    if name is None or name.upper() == "UTC":
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"BRIDGE_TIMEZONE: unknown time zone {name!r} (use an IANA name like Europe/Berlin)"
        ) from None


# ---------------------------------------------------------------- channels and YAML


def _settings(
    types: Mapping[str, ChannelType], raw: Any, where: str, key_names: Mapping[str, str] | None = None
) -> ChannelSettings:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with a `type`")
    kind = raw.get("type")
    if kind not in types:
        raise ConfigError(f"{where}.type: must be one of {', '.join(sorted(types))}, not {kind!r}")
    try:
        return types[kind].settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        key = (key_names or {}).get(loc, f"{where}.{loc}" if loc else where)
        # Only the key and pydantic's message: the input value may be a secret.
        raise ConfigError(f"{key}: {first['msg']}") from None


def _env_channels(env: Mapping[str, str], types: Mapping[str, ChannelType]) -> dict[str, ChannelSettings]:
    """The quick-start channels the environment asks for (SLACK_WEBHOOK_URL …), named after their type."""
    out = {}
    for name, kind in types.items():
        found = kind.from_env(env)
        if found is not None:
            settings, variables = found
            out[name] = _settings(types, {**settings, "type": name}, name.upper(), {**variables, "": name.upper()})
    return out


def _interpolate(value: Any, env: Mapping[str, str], where: str) -> Any:
    """Replace ${VAR} and ${VAR:-default} in every string of a parsed YAML tree (VAR_FILE works too)."""
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def sub(m: re.Match[str]) -> str:
        found = read_secret(env, m.group(1))
        if found is not None:
            return found
        if m.group(2) is not None:
            return m.group(2)
        raise ConfigError(f"{where}: ${{{m.group(1)}}} is not set")

    return _INTERPOLATION.sub(sub, value)


def _str_map(raw: Any, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise ConfigError(f"{where}: must be a mapping of label names to strings")
    return {k: str(v) for k, v in raw.items()}


def _route(raw: Any, where: str, channels: Mapping[str, Any]) -> Route:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping")
    unknown = set(raw) - {"path", "match", "match_re", "channels", "continue", "send_resolved"}
    if unknown:
        raise ConfigError(f"{where}.{sorted(unknown)[0]}: unknown key")
    names = raw.get("channels")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{where}.channels: must be a non-empty list of channel names")
    for n in names:
        if n not in channels:
            raise ConfigError(f"{where}.channels: unknown channel {n!r}")
    path = raw.get("path")
    if path is not None and not (isinstance(path, str) and ROUTE_NAME.match(path)):
        raise ConfigError(f"{where}.path: must be a route name like 'critical' (letters, digits, _ . -)")
    match_re = {}
    for k, pattern in _str_map(raw.get("match_re"), f"{where}.match_re").items():
        try:
            match_re[k] = re.compile(pattern)
        except re.error as exc:
            raise ConfigError(f"{where}.match_re.{k}: invalid regex: {exc}") from None
    for key in ("continue", "send_resolved"):
        if key in raw and not isinstance(raw[key], bool):
            raise ConfigError(f"{where}.{key}: must be true or false")
    return Route(
        channels=tuple(names),
        path=path,
        match=_str_map(raw.get("match"), f"{where}.match"),
        match_re=match_re,
        continue_=raw.get("continue", False),
        send_resolved=raw.get("send_resolved", True),
    )


def _yaml(path: Path, env: Mapping[str, str], types: Mapping[str, ChannelType]):
    where = f"BRIDGE_CONFIG {path}"
    try:
        doc = read_yaml(path)
    except ConfigError as exc:
        raise ConfigError(f"BRIDGE_CONFIG: {exc}") from None
    doc = doc or {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: must be a mapping with channels, routes, default_channels")
    unknown = set(doc) - {"channels", "routes", "default_channels"}
    if unknown:
        raise ConfigError(f"{where}: {sorted(unknown)[0]}: unknown key")
    try:
        doc = _interpolate(doc, env, "")
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    raw_channels = doc.get("channels") or {}
    if not isinstance(raw_channels, dict):
        raise ConfigError(f"{where}: channels: must be a mapping of names to channel settings")
    channels: dict[str, ChannelSettings] = {}
    for name, raw in raw_channels.items():
        if not isinstance(name, str) or not ROUTE_NAME.match(name):
            raise ConfigError(f"{where}: channels.{name}: names are letters, digits, _ . - (at most 64)")
        if isinstance(raw, dict) and raw.get("type") in types:
            raw = {**types[raw["type"]].env_defaults(env), **raw}  # e.g. `{type: email, to: […]}` takes SMTP_*
        channels[name] = _settings(types, raw, f"{where}: channels.{name}")
    raw_routes = doc.get("routes") or []
    if not isinstance(raw_routes, list):
        raise ConfigError(f"{where}: routes: must be a list")
    routes = tuple(_route(r, f"{where}: routes[{i}]", channels) for i, r in enumerate(raw_routes))
    # Without default_channels, an unrouted notification goes to every YAML channel rather than nowhere.
    default = doc["default_channels"] if doc.get("default_channels") is not None else list(channels)
    if not isinstance(default, list) or not all(isinstance(n, str) for n in default):
        raise ConfigError(f"{where}: default_channels: must be a list of channel names")
    for n in default:
        if n not in channels:
            raise ConfigError(f"{where}: default_channels: unknown channel {n!r}")
    return channels, routes, tuple(default)


def load_config(env: Mapping[str, str] | None, channel_types: Mapping[str, ChannelType]) -> BridgeConfig:
    """Read the environment (and BRIDGE_CONFIG, if set) into a BridgeConfig, or raise ConfigError."""
    env = os.environ if env is None else env
    types = channel_types
    host, port = _listen(env_value(env, "BRIDGE_LISTEN") or "0.0.0.0:9095")
    token = read_secret(env, "BRIDGE_TOKEN")
    raw_console = env_value(env, "BRIDGE_CONSOLE") or "auto"
    console = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false", "off": "false"}.get(
        raw_console.lower(), raw_console.lower()
    )
    if console not in ("auto", "true", "false"):
        raise ConfigError(f"BRIDGE_CONSOLE: must be auto, true or false, not {raw_console!r}")

    def duration(name: str, default: str) -> float:
        return parse_duration(env_value(env, name) or default, name)

    def path(name: str) -> Path | None:
        value = env_value(env, name)
        return Path(value) if value else None

    templates = path("BRIDGE_TEMPLATES_DIR")
    if templates is not None and not templates.is_dir():
        raise ConfigError(f"BRIDGE_TEMPLATES_DIR: {templates} is not a directory")

    channels = _env_channels(env, types)
    broadcast = list(channels)
    routes: tuple[Route, ...] = ()
    default: tuple[str, ...] = ()
    config_file = path("BRIDGE_CONFIG")
    if config_file is not None:
        yaml_channels, routes, default = _yaml(config_file, env, types)
        # A YAML channel with an environment channel's name replaces it, and is then routed like the others.
        broadcast = [n for n in broadcast if n not in yaml_channels]
        channels.update(yaml_channels)
    if console == "true" or (console == "auto" and not channels):
        if "console" not in types:
            raise ConfigError("BRIDGE_CONSOLE: the console channel type is not available")
        channels.setdefault("console", types["console"].settings(type="console"))
        if "console" not in broadcast:
            broadcast.append("console")

    return BridgeConfig(
        host=host,
        port=port,
        token=token,
        data_dir=path("BRIDGE_DATA_DIR") or Path("./data"),
        max_body=parse_size(env_value(env, "BRIDGE_MAX_BODY") or "16MiB", "BRIDGE_MAX_BODY"),
        dedupe_window=duration("BRIDGE_DEDUPE_WINDOW", "2m"),
        max_queue=_int(env, "BRIDGE_MAX_QUEUE", 10_000, 1),
        max_delivery_age=duration("BRIDGE_MAX_DELIVERY_AGE", "24h"),
        retry_initial=duration("BRIDGE_RETRY_INITIAL", "1s"),
        retry_max=duration("BRIDGE_RETRY_MAX", "5m"),
        shutdown_grace=duration("BRIDGE_SHUTDOWN_GRACE", "10s"),
        max_parts=_int(env, "BRIDGE_MAX_PARTS", 3, 1),
        console=console,
        config_file=config_file,
        templates_dir=templates,
        alertmanager_url=env_value(env, "ALERTMANAGER_URL"),
        grafana_url=env_value(env, "GRAFANA_URL"),
        prometheus_url=env_value(env, "PROMETHEUS_URL"),
        runbook_base_url=env_value(env, "RUNBOOK_BASE_URL"),
        prometheus_query_url=_http(env, "PROMETHEUS_QUERY_URL"),
        public_url=_http(env, "BRIDGE_PUBLIC_URL"),
        chart_timeout=duration("BRIDGE_CHART_TIMEOUT", "3s"),
        timezone=_timezone(env),
        log_level=(env_value(env, "BRIDGE_LOG_LEVEL") or "INFO").upper(),
        channels=channels,
        routing=Routing(broadcast=tuple(broadcast), routes=routes, default_channels=default),
    )
