"""Configuration: environment quick start, optional YAML channels and routes, and routing itself.

Every error is a ConfigError whose message names the variable or the file and key, never a secret value.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from bridge.payload import Notification

if TYPE_CHECKING:
    from bridge.channels.base import Channel, ChannelContext, ChannelSettings

__all__ = [
    "DEFAULT_ROUTE",
    "BridgeConfig",
    "ConfigError",
    "Route",
    "build_channels",
    "load_config",
    "parse_duration",
    "parse_size",
    "route_label",
    "select_channels",
]

DEFAULT_ROUTE = "default"  # the `route` label of POST /alerts
_ENV_CHANNELS = ("slack", "discord", "email", "webhook")
_ROUTE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_INTERPOLATION = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the variable or file and key."""


@dataclass(frozen=True)
class Route:
    """One YAML route: matches a receiver path and/or labels; sends to its channels; maybe continues."""

    channels: tuple[str, ...]
    path: str | None = None  # the {route} of POST /alerts/{route}; None: any
    match: Mapping[str, str] = field(default_factory=dict)
    match_re: Mapping[str, re.Pattern[str]] = field(default_factory=dict)
    continue_: bool = False
    send_resolved: bool = True

    def matches(self, route: str, notification: Notification) -> bool:
        if self.path is not None and self.path != route:
            return False
        if not self.match and not self.match_re:
            return True
        # A group matches when any of its alerts does (its labels over the group's common labels), so that
        # `severity: critical` catches a mixed group holding one critical alert.
        return any(self._labels_match({**notification.common_labels, **a.labels}) for a in notification.alerts)

    def _labels_match(self, labels: Mapping[str, str]) -> bool:
        if any(labels.get(k, "") != v for k, v in self.match.items()):
            return False
        return all(p.fullmatch(labels.get(k, "")) for k, p in self.match_re.items())


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
    public_url: str | None = None  # BRIDGE_PUBLIC_URL: where people and chat services reach the bridge
    log_level: str = "INFO"
    channels: Mapping[str, ChannelSettings] = field(default_factory=dict, repr=False)
    broadcast: tuple[str, ...] = ()  # channels from the environment (and console): every notification
    routes: tuple[Route, ...] = ()
    default_channels: tuple[str, ...] = ()

    @property
    def route_names(self) -> tuple[str, ...]:
        """Route labels known up front: the default one and every YAML route path."""
        return (DEFAULT_ROUTE, *sorted({r.path for r in self.routes if r.path}))


# ---------------------------------------------------------------- value parsers

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib|k|m|g)?$", re.IGNORECASE)
_SIZE_UNITS = {
    None: 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(text: str, name: str) -> float:
    """'90s', '2m', '1h30m', '24h' or plain seconds → seconds; ConfigError naming `name` otherwise."""
    value = text.strip().lower()
    try:
        return float(value)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ConfigError(f"{name}: not a duration: {text!r} (use e.g. 30s, 2m, 24h)")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def parse_size(text: str, name: str) -> int:
    """'16MiB', '512KiB', '10MB' or plain bytes → bytes."""
    m = _SIZE.match(text.strip())
    if not m:
        raise ConfigError(f"{name}: not a size: {text!r} (use e.g. 16MiB, 512KiB)")
    unit = m.group(2).lower() if m.group(2) else None
    return int(float(m.group(1)) * _SIZE_UNITS[unit])


def _env_secret(env: Mapping[str, str], name: str) -> str | None:
    """`NAME`, or the stripped content of the file named by `NAME_FILE`."""
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ConfigError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
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


# ---------------------------------------------------------------- channels and YAML


def _channel_types() -> Mapping[str, type[ChannelSettings]]:
    from bridge.channels import CHANNEL_TYPES  # the registry lives with the channels

    return CHANNEL_TYPES


def _settings(
    types: Mapping[str, type[ChannelSettings]], raw: Any, where: str, key_names: Mapping[str, str] | None = None
) -> ChannelSettings:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: must be a mapping with a `type`")
    kind = raw.get("type")
    if kind not in types:
        raise ConfigError(f"{where}.type: must be one of {', '.join(sorted(types))}, not {kind!r}")
    try:
        return types[kind].model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        key = (key_names or {}).get(loc, f"{where}.{loc}" if loc else where)
        # Only the key and pydantic's message: the input value may be a secret.
        raise ConfigError(f"{key}: {first['msg']}") from None


def _email_defaults(env: Mapping[str, str]) -> dict[str, Any]:
    """SMTP_* and EMAIL_FROM as email settings keys, for the env channel and YAML email channels."""
    out: dict[str, Any] = {}
    if env.get("SMTP_HOST"):
        out["host"] = env["SMTP_HOST"]
    if env.get("SMTP_PORT"):
        out["port"] = _int(env, "SMTP_PORT", 587, 1)
    if env.get("SMTP_USERNAME"):
        out["username"] = env["SMTP_USERNAME"]
    password = _env_secret(env, "SMTP_PASSWORD")
    if password:
        out["password"] = password
    if env.get("SMTP_TLS"):
        out["tls"] = env["SMTP_TLS"].lower()
    if env.get("EMAIL_FROM"):
        out["from"] = env["EMAIL_FROM"]
    return out


_EMAIL_KEYS = {
    "host": "SMTP_HOST",
    "port": "SMTP_PORT",
    "username": "SMTP_USERNAME",
    "password": "SMTP_PASSWORD",
    "tls": "SMTP_TLS",
    "from": "EMAIL_FROM",
    "from_": "EMAIL_FROM",
    "to": "EMAIL_TO",
}


def _env_channels(env: Mapping[str, str], types: Mapping[str, type[ChannelSettings]]) -> dict[str, ChannelSettings]:
    raw: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    if url := _env_secret(env, "SLACK_WEBHOOK_URL"):
        raw["slack"] = ({"type": "slack", "webhook_url": url}, {"webhook_url": "SLACK_WEBHOOK_URL"})
    if url := _env_secret(env, "DISCORD_WEBHOOK_URL"):
        raw["discord"] = ({"type": "discord", "webhook_url": url}, {"webhook_url": "DISCORD_WEBHOOK_URL"})
    # SMTP_HOST alone only serves YAML email channels; EMAIL_TO makes the environment's own "email" channel.
    if env.get("EMAIL_TO"):
        if not env.get("SMTP_HOST"):
            raise ConfigError("SMTP_HOST: required for the email channel that EMAIL_TO asks for")
        to = [a.strip() for a in env["EMAIL_TO"].split(",") if a.strip()]
        raw["email"] = ({"type": "email", **_email_defaults(env), "to": to}, _EMAIL_KEYS)
    if url := _env_secret(env, "WEBHOOK_URL"):
        raw["webhook"] = ({"type": "webhook", "url": url}, {"url": "WEBHOOK_URL"})
    out = {}
    for name, (settings, keys) in raw.items():
        out[name] = _settings(types, settings, name, {k: v for k, v in keys.items()} | {"": name.upper()})
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
        found = _env_secret(env, m.group(1))
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
    if path is not None and not (isinstance(path, str) and _ROUTE_NAME.match(path)):
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


def _yaml(path: Path, env: Mapping[str, str], types: Mapping[str, type[ChannelSettings]]):
    where = f"BRIDGE_CONFIG {path}"
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{where}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
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
        if not isinstance(name, str) or not _ROUTE_NAME.match(name):
            raise ConfigError(f"{where}: channels.{name}: names are letters, digits, _ . - (at most 64)")
        if isinstance(raw, dict) and raw.get("type") == "email":
            raw = {**_email_defaults(env), **raw}  # the issue's `{type: email, to: [...]}` takes SMTP_* from env
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


def load_config(
    env: Mapping[str, str] | None = None, *, channel_types: Mapping[str, type[ChannelSettings]] | None = None
) -> BridgeConfig:
    """Read the environment (and BRIDGE_CONFIG, if set) into a BridgeConfig, or raise ConfigError."""
    env = os.environ if env is None else env
    types = channel_types if channel_types is not None else _channel_types()
    host, port = _listen(env.get("BRIDGE_LISTEN") or "0.0.0.0:9095")
    token = _env_secret(env, "BRIDGE_TOKEN")
    console = (env.get("BRIDGE_CONSOLE") or "auto").lower()
    console = {"1": "true", "yes": "true", "on": "true", "0": "false", "no": "false", "off": "false"}.get(
        console, console
    )
    if console not in ("auto", "true", "false"):
        raise ConfigError(f"BRIDGE_CONSOLE: must be auto, true or false, not {env.get('BRIDGE_CONSOLE')!r}")

    def duration(name: str, default: str) -> float:
        value = parse_duration(env.get(name) or default, name)
        if value < 0:
            raise ConfigError(f"{name}: must not be negative")
        return value

    templates = Path(env["BRIDGE_TEMPLATES_DIR"]) if env.get("BRIDGE_TEMPLATES_DIR") else None
    if templates is not None and not templates.is_dir():
        raise ConfigError(f"BRIDGE_TEMPLATES_DIR: {templates} is not a directory")

    channels = _env_channels(env, types)
    broadcast = list(channels)
    routes: tuple[Route, ...] = ()
    default: tuple[str, ...] = ()
    config_file = Path(env["BRIDGE_CONFIG"]) if env.get("BRIDGE_CONFIG") else None
    if config_file is not None:
        yaml_channels, routes, default = _yaml(config_file, env, types)
        # A YAML channel with an environment channel's name replaces it, and is then routed like the others.
        broadcast = [n for n in broadcast if n not in yaml_channels]
        channels.update(yaml_channels)
    if console == "true" or (console == "auto" and not channels):
        channels.setdefault("console", types["console"](type="console") if "console" in types else None)
        if channels["console"] is None:
            raise ConfigError("BRIDGE_CONSOLE: the console channel type is not available")
        if "console" not in broadcast:
            broadcast.append("console")

    return BridgeConfig(
        host=host,
        port=port,
        token=token or None,
        data_dir=Path(env.get("BRIDGE_DATA_DIR") or "./data"),
        max_body=parse_size(env.get("BRIDGE_MAX_BODY") or "16MiB", "BRIDGE_MAX_BODY"),
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
        alertmanager_url=env.get("ALERTMANAGER_URL") or None,
        grafana_url=env.get("GRAFANA_URL") or None,
        prometheus_url=env.get("PROMETHEUS_URL") or None,
        runbook_base_url=env.get("RUNBOOK_BASE_URL") or None,
        public_url=(env.get("BRIDGE_PUBLIC_URL") or "").rstrip("/") or None,
        log_level=(env.get("BRIDGE_LOG_LEVEL") or "INFO").upper(),
        channels=channels,
        broadcast=tuple(broadcast),
        routes=routes,
        default_channels=default,
    )


# ---------------------------------------------------------------- routing


def route_label(route: str | None) -> str:
    """The `route` metric label of a receiver path: its name, "default" for /alerts, "other" if odd."""
    if not route:
        return DEFAULT_ROUTE
    return route if _ROUTE_NAME.match(route) else "other"


def select_channels(config: BridgeConfig, route: str, notification: Notification) -> list[str]:
    """Channel names for one notification: environment channels, then YAML routes, else default_channels."""
    chosen: list[str] = list(config.broadcast)
    matched = False
    for r in config.routes:
        if not r.matches(route, notification):
            continue
        matched = True
        if notification.status == "resolved" and not r.send_resolved:
            pass
        else:
            chosen.extend(r.channels)
        if not r.continue_:
            break
    if not matched:
        chosen.extend(config.default_channels)
    out: list[str] = []
    for name in chosen:
        settings = config.channels.get(name)
        if name in out or settings is None:
            continue
        if notification.status == "resolved" and not settings.send_resolved:
            continue
        out.append(name)
    return out


def build_channels(
    config: BridgeConfig,
    ctx: ChannelContext,
    factory: Callable[[str, ChannelSettings, ChannelContext], Channel] | None = None,
) -> dict[str, Channel]:
    """One Channel object per configured channel, through the channel registry."""
    if factory is None:
        from bridge.channels import create_channel as factory
    out: dict[str, Channel] = {}
    for name, settings in config.channels.items():
        try:
            out[name] = factory(name, settings, ctx)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"channel {name}: {exc}") from None
    return out
