"""Simulator settings from flags and SIM_* environment variables; errors name the variable."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from common import program_version
from common.errors import ConfigError
from common.secrets import env_value, read_secret
from exporter.simulator.formats import FORMATS
from exporter.simulator.scenarios import DEMO_TIMELINE, SCENARIOS

__all__ = ["ConfigError", "Settings", "build_parser", "load_settings", "parse_listen"]


@dataclass(frozen=True)
class Settings:
    """Everything the simulator needs; the token is kept out of repr so it never reaches a log."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = field(default=None, repr=False)
    scenario: str = "steady"
    speed: float = 1.0
    series: int = 0
    format: str = "llm"  # whose names, labels, units and buckets /metrics speaks


def parse_listen(value: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' → (host, port); raises ValueError with the reason."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected host:port, got {value!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"port {port_text!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 0-65535")
    return host, port


def _timeline_text() -> str:
    return ", ".join(
        f"{s.start_minute:g}-{'' if math.isinf(s.end_minute) else f'{s.end_minute:g}'} {s.scenario}"
        for s in DEMO_TIMELINE
    )


def build_parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line; each flag defaults to its environment variable."""
    parser = argparse.ArgumentParser(
        prog="llm-proxy-sim",
        description="Stand-in LLM auth proxy: /metrics (Bearer SIM_TOKEN) with scripted traffic, "
        "/healthz, GET and POST /scenario. Every flag can also be set by the variable named in its help.",
        epilog=f"demo timeline (scenario minutes): {_timeline_text()}. Incidents hit model gpt-4o only.",
    )
    parser.add_argument("--version", action="version", version=program_version("llm-proxy-sim"))
    parser.add_argument(
        "--listen",
        default=env_value(environ, "SIM_LISTEN") or "127.0.0.1:8000",
        help="host:port to serve on (SIM_LISTEN; default 127.0.0.1:8000)",
    )
    parser.add_argument(
        "--token-file",
        default=env_value(environ, "SIM_TOKEN_FILE"),
        help="file holding the Bearer token required on /metrics and POST /scenario (SIM_TOKEN_FILE; "
        "or the token itself in SIM_TOKEN; neither: open, with a warning)",
    )
    parser.add_argument(
        "--scenario",
        default=env_value(environ, "SIM_SCENARIO") or "steady",
        help=f"traffic scenario: {', '.join(SCENARIOS)} (SIM_SCENARIO; default steady)",
    )
    parser.add_argument(
        "--speed",
        default=env_value(environ, "SIM_SPEED") or "1",
        help="scenario minutes per real minute, > 0 (SIM_SPEED; default 1; 60 = one scenario minute per second)",
    )
    parser.add_argument(
        "--series",
        default=env_value(environ, "SIM_SERIES") or "0",
        help="extra static series of the latency histogram for benchmarks, in whole label sets of 11 "
        "series (SIM_SERIES; default 0)",
    )
    parser.add_argument(
        "--format",
        default=environ.get("SIM_FORMAT", "llm"),
        help=f"metric names, labels, units and buckets of: {', '.join(FORMATS)} (SIM_FORMAT; default llm)",
    )
    return parser


def _source(flag: str, var: str) -> str:
    return f"{var} ({flag})"


def load_settings(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `argv` and `environ` (default: the process's); raises ConfigError."""
    environ = os.environ if environ is None else environ
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(environ).parse_args(argv)

    try:
        host, port = parse_listen(args.listen)
    except ValueError as exc:
        raise ConfigError(f"{_source('--listen', 'SIM_LISTEN')}: {exc}") from None

    if args.scenario not in SCENARIOS:
        raise ConfigError(
            f"{_source('--scenario', 'SIM_SCENARIO')}: unknown scenario {args.scenario!r}; "
            f"known: {', '.join(SCENARIOS)}"
        )

    where = _source("--speed", "SIM_SPEED")
    try:
        speed = float(args.speed)
    except ValueError:
        raise ConfigError(f"{where}: {args.speed!r} is not a number") from None
    if not math.isfinite(speed) or speed <= 0:
        raise ConfigError(f"{where}: must be a finite number > 0, got {args.speed!r}")

    where = _source("--series", "SIM_SERIES")
    try:
        series = int(args.series)
    except ValueError:
        raise ConfigError(f"{where}: {args.series!r} is not a whole number") from None
    if series < 0:
        raise ConfigError(f"{where}: must be >= 0, got {series}")

    if args.format not in FORMATS:
        raise ConfigError(
            f"{_source('--format', 'SIM_FORMAT')}: unknown format {args.format!r}; known: {', '.join(FORMATS)}"
        )

    return Settings(
        host=host,
        port=port,
        token=_token(args.token_file, environ),
        scenario=args.scenario,
        speed=speed,
        series=series,
        format=args.format,
    )


def _token(token_file: str | None, environ: Mapping[str, str]) -> str | None:
    # --token-file wins over SIM_TOKEN_FILE like every flag; empty means unset, both forms set is an error.
    return read_secret({"SIM_TOKEN": environ.get("SIM_TOKEN"), "SIM_TOKEN_FILE": token_file}, "SIM_TOKEN")
