"""Environment variables and flags → one frozen Config; every error names the variable, never a secret."""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from common import program_version
from common.durations import parse_duration
from common.errors import ConfigError
from common.secrets import env_value, read_secret
from common.sizes import parse_size
from exporter.mapping import Loaded, MappingError, preset_names, resolve_mapping
from exporter.prices import Prices, PricesError, load_prices

__all__ = [
    "VARIABLES",
    "Config",
    "ConfigError",
    "Variable",
    "Window",
    "format_duration",
    "load_config",
    "upstream_label",
]


@dataclass(frozen=True)
class Variable:
    """One setting: its environment variable, its flag, a help line, the default as text and its kind.

    `kind` says how the text is read: "duration" (common.durations), "durations" (comma-separated), "size"
    (common.sizes), "bool" (the flag also works as a bare switch) or "" for anything else.
    """

    env: str
    flag: str
    help: str
    default: str | None = None
    secret: bool = False
    kind: str = ""


VARIABLES: tuple[Variable, ...] = (
    Variable("LLM_PROXY_URL", "--proxy-url", "upstream metrics URL; several, comma-separated, for fan-in (required)"),
    Variable("LLM_PROXY_TOKEN", "--proxy-token", "Bearer token sent upstream (prefer the _FILE form)", secret=True),
    Variable("LLM_PROXY_TOKEN_FILE", "--proxy-token-file", "file holding the upstream Bearer token"),
    Variable(
        "LLM_PROXY_TIMEOUT",
        "--proxy-timeout",
        "timeout of one upstream scrape (capped at the poll interval)",
        "10s",
        kind="duration",
    ),
    Variable("LLM_PROXY_CA_FILE", "--proxy-ca-file", "CA bundle for TLS to the upstream (default: system CAs)"),
    Variable(
        "LLM_PROXY_TLS_INSECURE",
        "--proxy-tls-insecure",
        "skip TLS verification of the upstream (logged loudly); the bare flag means true",
        "false",
        kind="bool",
    ),
    Variable("EXPORTER_LISTEN", "--listen", "host:port to serve on", "0.0.0.0:9470"),
    Variable(
        "EXPORTER_TOKEN",
        "--token",
        "Bearer token required on /metrics; unset: open (prefer the _FILE form)",
        secret=True,
    ),
    Variable("EXPORTER_TOKEN_FILE", "--token-file", "file holding the Bearer token required on /metrics"),
    Variable(
        "EXPORTER_POLL_INTERVAL",
        "--poll-interval",
        "time between upstream polls (seconds, or 15s, 1m)",
        "15",
        kind="duration",
    ),
    Variable(
        "EXPORTER_WINDOWS", "--windows", "windows of the derived metrics, comma-separated", "1m,5m", kind="durations"
    ),
    Variable("EXPORTER_BASELINE", "--baseline", "how far back the surge ratios look", "1h", kind="duration"),
    Variable("EXPORTER_GROUP_BY", "--group-by", "labels kept on derived metrics, comma-separated", "model"),
    Variable(
        "EXPORTER_MAX_SERIES",
        "--max-series",
        'label sets per derived metric before folding into model="__other__"',
        "10000",
    ),
    Variable("EXPORTER_PRICES_FILE", "--prices-file", "YAML: USD per 1M prompt / completion tokens, per model"),
    Variable(
        "EXPORTER_LATENCY_THRESHOLD",
        "--latency-threshold",
        "seconds; a request slower than this is slow (keep equal to the latency alert's)",
        "2",
    ),
    Variable(
        "EXPORTER_MAX_BODY",
        "--max-body",
        "largest upstream answer accepted (bytes, or 64MiB, 10MB; every unit a power of 1024)",
        "64MiB",
        kind="size",
    ),
    Variable("EXPORTER_LOG_LEVEL", "--log-level", "debug, info, warning or error", "info"),
    Variable(
        "LLM_DAILY_BUDGET_USD",
        "--daily-budget-usd",
        "daily spend budget in USD, exposed as llm_daily_budget_usd for the budget alert (default: none)",
    ),
    # Gateways: which source families feed the canonical llm_* ones, and what is relayed.
    Variable("EXPORTER_MAPPING", "--mapping", f"source mapping: {', '.join(preset_names())} or a YAML file", "llm"),
    Variable("EXPORTER_RELAY", "--relay", "all: relay the upstream's families too; canonical: only ours", "all"),
)

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_LOG_LEVELS = ("debug", "info", "warning", "error")


@dataclass(frozen=True)
class Window:
    """A derived-metric window: its `window` label (canonical, like 1m) and its length in seconds."""

    label: str
    seconds: float


@dataclass(frozen=True)
class Config:
    """Everything the sidecar needs, validated."""

    upstream_urls: tuple[str, ...]
    upstream_token: str | None = None
    upstream_timeout: float = 10.0
    upstream_ca_file: Path | None = None
    upstream_tls_insecure: bool = False
    listen_host: str = "0.0.0.0"
    listen_port: int = 9470
    token: str | None = None
    poll_interval: float = 15.0
    windows: tuple[Window, ...] = (Window("1m", 60.0), Window("5m", 300.0))
    baseline: float = 3600.0
    group_by: tuple[str, ...] = ("model",)
    max_series: int = 10000
    prices: Prices | None = None
    latency_threshold: float = 2.0
    max_body: int = 64 * 1024**2
    log_level: str = "info"
    daily_budget_usd: float | None = None
    mapping: Loaded | None = None  # None: the default, the proxy's own llm_* families relayed as they are
    relay: str = "all"

    def __repr__(self) -> str:  # keeps tokens out of any accidental log of the config
        return (
            f"Config(upstreams={[upstream_label(u) for u in self.upstream_urls]}, listen={self.listen_host}:"
            f"{self.listen_port}, poll_interval={self.poll_interval}, windows={[w.label for w in self.windows]})"
        )

    @property
    def upstream_labels(self) -> tuple[str, ...]:
        """The `upstream` label of each URL: host:port, never the URL (which can hold credentials)."""
        return tuple(upstream_label(u) for u in self.upstream_urls)

    @property
    def scrape_timeout(self) -> float:
        """Timeout of one upstream scrape: never longer than the poll interval."""
        return min(self.upstream_timeout, self.poll_interval)

    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in logs, metrics or errors."""
        return tuple(s for s in (self.upstream_token, self.token) if s)


def format_duration(seconds: float) -> str:
    """Seconds → the shortest exact label: 60 → '1m', 300 → '5m', 90 → '90s', 0.5 → '500ms'."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        count = seconds / size
        if count >= 1 and math.isclose(count, round(count), abs_tol=1e-9):
            return f"{round(count)}{unit}"
    return f"{round(seconds * 1000)}ms"


def upstream_label(url: str) -> str:
    """host:port of a URL (default port by scheme); never the path, query or credentials."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{host}:{port}"


def _parser() -> argparse.ArgumentParser:
    epilog = "Each flag can also be set by its environment variable; a flag wins over the variable."
    p = argparse.ArgumentParser(
        prog="llm-exporter", description="Metrics sidecar for an LLM auth proxy.", epilog=epilog
    )
    p.add_argument("--version", action="version", version=program_version("llm-exporter"))
    for var in VARIABLES:
        default = f" (default: {var.default})" if var.default is not None else ""
        # A bool flag alone means true (`--proxy-tls-insecure`); `--proxy-tls-insecure false` still works.
        switch = {"nargs": "?", "const": "true"} if var.kind == "bool" else {}
        p.add_argument(var.flag, dest=var.env, metavar=var.env, default=None, help=f"{var.help}{default}", **switch)
    return p


def _urls(raw: str | None) -> tuple[str, ...]:
    if not raw or not raw.strip():
        raise ConfigError("LLM_PROXY_URL is required: the upstream metrics URL, e.g. http://127.0.0.1:8000/metrics")
    urls = tuple(u.strip() for u in raw.split(",") if u.strip())
    labels: set[str] = set()
    for i, url in enumerate(urls, 1):
        # The URL is not echoed: it may carry credentials.
        try:
            parts = urlsplit(url)
            _ = parts.port
        except ValueError:
            raise ConfigError(f"LLM_PROXY_URL: entry {i} is not a valid URL (bad port?)") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"LLM_PROXY_URL: entry {i} must be an http:// or https:// URL with a host")
        label = upstream_label(url)
        if label in labels:
            raise ConfigError(
                f"LLM_PROXY_URL: entry {i} has the same host:port ({label}) as an earlier one; "
                "the upstream label must tell them apart"
            )
        labels.add(label)
    return urls


def _duration(values: Mapping[str, str | None], name: str, minimum: float = 0.0) -> float:
    seconds = parse_duration(values[name] or "", name)
    if seconds <= minimum:
        raise ConfigError(f"{name}: must be longer than {format_duration(minimum) if minimum else '0'}")
    return seconds


def _windows(raw: str, poll: float) -> tuple[Window, ...]:
    seconds: set[float] = set()
    for part in raw.split(","):
        if not part.strip():
            continue
        s = parse_duration(part, "EXPORTER_WINDOWS")
        if s <= poll:
            raise ConfigError(
                f"EXPORTER_WINDOWS: window {part.strip()} must be longer than EXPORTER_POLL_INTERVAL "
                f"({format_duration(poll)}) so that it holds two polls"
            )
        seconds.add(s)
    if not seconds:
        raise ConfigError("EXPORTER_WINDOWS: at least one window is required, e.g. 1m,5m")
    return tuple(Window(format_duration(s), s) for s in sorted(seconds))


def _listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"EXPORTER_LISTEN: expected host:port, e.g. 0.0.0.0:9470, got {raw!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _bool(values: Mapping[str, str | None], name: str) -> bool:
    raw = (values.get(name) or "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{name}: expected true or false, got {raw!r}")


def _mapping(values: Mapping[str, str | None]) -> tuple[Loaded | None, str]:
    relay = (values["EXPORTER_RELAY"] or "all").strip().lower()
    if relay not in ("all", "canonical"):
        raise ConfigError(f"EXPORTER_RELAY: expected all or canonical, got {relay!r}")
    name = (values["EXPORTER_MAPPING"] or "llm").strip()
    if name == "llm" and relay == "all":
        return None, relay  # today's behaviour: nothing added
    try:
        return resolve_mapping(name), relay
    except MappingError as exc:
        raise ConfigError(f"EXPORTER_MAPPING: {exc}") from None


def load_config(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Flags (winning) and environment → Config; ConfigError names the variable on any problem."""
    env = os.environ if environ is None else environ
    args = vars(_parser().parse_args(list(argv) if argv is not None else []))
    values: dict[str, str | None] = {}
    for var in VARIABLES:
        flag_value = args.get(var.env)
        # An empty variable keeps the default: Compose passes unset variables as empty strings.
        values[var.env] = flag_value if flag_value is not None else (env_value(env, var.env) or var.default)

    urls = _urls(values["LLM_PROXY_URL"])
    upstream_token = read_secret(values, "LLM_PROXY_TOKEN")
    token = read_secret(values, "EXPORTER_TOKEN")
    poll = _duration(values, "EXPORTER_POLL_INTERVAL")
    if poll < 0.1:
        raise ConfigError("EXPORTER_POLL_INTERVAL: must be at least 100ms")
    windows = _windows(values["EXPORTER_WINDOWS"] or "", poll)
    baseline = _duration(values, "EXPORTER_BASELINE")
    timeout = _duration(values, "LLM_PROXY_TIMEOUT")
    host, port = _listen(values["EXPORTER_LISTEN"] or "")

    group_by = tuple(g.strip() for g in (values["EXPORTER_GROUP_BY"] or "").split(",") if g.strip())
    for name in group_by:
        if not _LABEL_NAME.match(name) or name in ("le", "window"):
            raise ConfigError(f"EXPORTER_GROUP_BY: {name!r} is not a usable label name")
    if len(set(group_by)) != len(group_by):
        raise ConfigError("EXPORTER_GROUP_BY: a label is listed twice")

    try:
        max_series = int(values["EXPORTER_MAX_SERIES"] or "")
    except ValueError:
        raise ConfigError(
            f"EXPORTER_MAX_SERIES: expected a whole number, got {values['EXPORTER_MAX_SERIES']!r}"
        ) from None
    if max_series < 1:
        raise ConfigError("EXPORTER_MAX_SERIES: must be at least 1")

    try:
        threshold = float(values["EXPORTER_LATENCY_THRESHOLD"] or "")
    except ValueError:
        raise ConfigError("EXPORTER_LATENCY_THRESHOLD: expected seconds, e.g. 2 or 0.5") from None
    if not (threshold > 0 and math.isfinite(threshold)):
        raise ConfigError("EXPORTER_LATENCY_THRESHOLD: must be a positive number of seconds")

    max_body = parse_size(values["EXPORTER_MAX_BODY"] or "", "EXPORTER_MAX_BODY")
    if max_body < 1024:
        raise ConfigError("EXPORTER_MAX_BODY: must be at least 1KiB")

    prices = None
    if values["EXPORTER_PRICES_FILE"]:
        try:
            prices = load_prices(Path(values["EXPORTER_PRICES_FILE"]))
        except PricesError as exc:
            raise ConfigError(f"EXPORTER_PRICES_FILE: {exc}") from None

    ca_file = None
    if values["LLM_PROXY_CA_FILE"]:
        ca_file = Path(values["LLM_PROXY_CA_FILE"])
        if not ca_file.is_file():
            raise ConfigError(f"LLM_PROXY_CA_FILE: {ca_file} is not a readable file")

    budget = None
    if values["LLM_DAILY_BUDGET_USD"]:
        try:
            budget = float(values["LLM_DAILY_BUDGET_USD"])
        except ValueError:
            raise ConfigError("LLM_DAILY_BUDGET_USD: expected an amount in USD, e.g. 250 or 99.5") from None
        if not (budget > 0 and math.isfinite(budget)):
            raise ConfigError("LLM_DAILY_BUDGET_USD: must be a positive amount in USD")

    level = (values["EXPORTER_LOG_LEVEL"] or "info").strip().lower()
    if level not in _LOG_LEVELS:
        raise ConfigError(f"EXPORTER_LOG_LEVEL: expected one of {', '.join(_LOG_LEVELS)}, got {level!r}")

    mapping, relay = _mapping(values)
    return Config(
        mapping=mapping,
        relay=relay,
        upstream_urls=urls,
        upstream_token=upstream_token,
        upstream_timeout=timeout,
        upstream_ca_file=ca_file,
        upstream_tls_insecure=_bool(values, "LLM_PROXY_TLS_INSECURE"),
        listen_host=host,
        listen_port=port,
        token=token,
        poll_interval=poll,
        windows=windows,
        baseline=baseline,
        group_by=group_by,
        max_series=max_series,
        prices=prices,
        latency_threshold=threshold,
        max_body=max_body,
        log_level=level,
        daily_budget_usd=budget,
    )
