"""`make demo`: run the stack on the default ports, print URLs, a live status line and each notification."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TextIO

from exporter.mapping import resolve_mapping
from exporter.simulator.formats import FORMATS
from stack.configs import Ports
from stack.local import SERVICES, StackError, StackSettings, check_ports, http_get, run_stack
from stack.status import format_status, read_status

__all__ = ["DEMO_ENV", "DemoConfig", "DemoConfigError", "load_demo_config", "run_demo"]

# Every variable the demo reads, with its meaning: `python -m stack demo --help` prints this.
DEMO_ENV = {
    "DEMO_TIME_SCALE": "factor applied to every duration in the deploy configs, 0 < f <= 1; the simulator "
    "runs at speed 1/f (default 1/60: an hour of scenario time per real minute)",
    "DEMO_EXIT_AFTER": "stop by itself after this many seconds (default: run until Ctrl-C)",
    "DEMO_RUN_DIR": "where configs, data and logs go; emptied at start (default .demo/run)",
    "DEMO_FORMAT": f"the simulated gateway: {', '.join(FORMATS)}; the sidecar maps it (default llm)",
    **{var: f"{what} port on 127.0.0.1 (default {getattr(Ports(), key)})" for key, (what, var) in SERVICES.items()},
}
# Channel settings passed on to the bridge, beside its console channel.
_BRIDGE_PREFIXES = ("SLACK_", "DISCORD_", "TEAMS_", "SMTP_", "EMAIL_", "WEBHOOK_", "RUNBOOK_BASE_URL", "GRAFANA_URL")
_BRIDGE_VARS = ("BRIDGE_CONFIG", "BRIDGE_TEMPLATES_DIR")
_MARKER = ".llm-monitoring-demo"  # only a dir holding this is ever emptied
_TRAFFIC_ALERTS = ("LLMHighFailureRate", "LLMHighLatency", "LLMRequestSurge", "LLMTokenSurge")
# The canonical family each traffic alert cannot do without (all of them need llm_requests_total).
_ALERT_NEEDS = {
    "LLMHighFailureRate": "llm_requests_failed_total",
    "LLMHighLatency": "llm_response_latency_seconds",
    "LLMTokenSurge": "llm_tokens_used_total",
}


class DemoConfigError(ValueError):
    """A DEMO_* variable is wrong; the message names it."""


@dataclass(frozen=True)
class DemoConfig:
    ports: Ports = field(default_factory=Ports)
    factor: Fraction = Fraction(1, 60)
    exit_after: float | None = None
    run_dir: Path = Path(".demo/run")
    bridge_env: Mapping[str, str] = field(default_factory=dict)
    format: str = "llm"


def unreachable_alerts(fmt: str) -> tuple[str, ...]:
    """Traffic alerts that cannot fire with gateway `fmt`: its mapping has no source for what they need."""
    missing = resolve_mapping(fmt).mapping.missing()
    return tuple(a for a in _TRAFFIC_ALERTS if _ALERT_NEEDS.get(a, "llm_requests_total") in missing)


def load_demo_config(environ: Mapping[str, str]) -> DemoConfig:
    """The demo's settings from DEMO_* variables; raises DemoConfigError naming the variable."""
    try:
        factor = Fraction(environ.get("DEMO_TIME_SCALE", "1/60").strip())
    except (ValueError, ZeroDivisionError):
        raise DemoConfigError(
            f"DEMO_TIME_SCALE: {environ['DEMO_TIME_SCALE']!r} is not a number like 1/60 or 0.05"
        ) from None
    if not 0 < factor <= 1:
        raise DemoConfigError(f"DEMO_TIME_SCALE: must be > 0 and <= 1, got {environ['DEMO_TIME_SCALE']!r}")

    exit_after = None
    if environ.get("DEMO_EXIT_AFTER", "").strip():
        try:
            exit_after = float(environ["DEMO_EXIT_AFTER"])
        except ValueError:
            raise DemoConfigError(f"DEMO_EXIT_AFTER: {environ['DEMO_EXIT_AFTER']!r} is not a number") from None
        if not exit_after > 0:
            raise DemoConfigError(f"DEMO_EXIT_AFTER: must be > 0 seconds, got {environ['DEMO_EXIT_AFTER']!r}")

    ports = {}
    for key, (_, var) in SERVICES.items():
        if var not in environ:
            continue
        try:
            ports[key] = int(environ[var])
        except ValueError:
            raise DemoConfigError(f"{var}: {environ[var]!r} is not a port number") from None
        if not 1 <= ports[key] <= 65535:
            raise DemoConfigError(f"{var}: {ports[key]} is out of range 1-65535")
    if len(set(Ports(**ports).by_service().values())) < len(SERVICES):
        raise DemoConfigError(f"two services would share a port: check {', '.join(v for _, v in SERVICES.values())}")

    bridge_env = {k: v for k, v in environ.items() if k.startswith(_BRIDGE_PREFIXES) or k in _BRIDGE_VARS}
    run_dir = Path(environ.get("DEMO_RUN_DIR") or ".demo/run")
    fmt = environ.get("DEMO_FORMAT", "").strip() or "llm"
    if fmt not in FORMATS:
        raise DemoConfigError(f"DEMO_FORMAT: unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    return DemoConfig(Ports(**ports), factor, exit_after, run_dir, bridge_env, fmt)


def _prepare_run_dir(run_dir: Path) -> None:
    """An empty run dir: stale Prometheus data would look like an hour-old baseline to the surge alerts."""
    if run_dir.exists() and any(run_dir.iterdir()):
        if not (run_dir / _MARKER).exists():
            raise DemoConfigError(f"DEMO_RUN_DIR: {run_dir} is not empty and was not made by the demo; pick another")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / _MARKER).touch()


class _Printer:
    """Serialises output from the status loop and the bridge's reader thread; on a terminal the status line
    is redrawn in place, otherwise it is printed only when it says something new."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self.lock = threading.Lock()
        self.status = ""
        self._key = ""
        self._printed_at = 0.0

    def line(self, text: str) -> None:
        with self.lock:
            if self.tty and self.status:
                self.out.write("\r\033[K")
            self.out.write(text + "\n")
            if self.tty and self.status:
                self.out.write(self._fit(self.status))
            self.out.flush()

    def notification(self, text: str) -> None:
        """One stdout line of the bridge: its console channel; structured log lines stay in its log file."""
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                json.loads(stripped)
                return
            except ValueError:
                pass
        self.line(f"  | {text}")

    def show_status(self, text: str, key: str) -> None:
        with self.lock:
            self.status = text
            if self.tty:
                self.out.write("\r\033[K" + self._fit(text))
            elif key != self._key or time.monotonic() - self._printed_at > 30:
                self.out.write(text + "\n")
                self._key, self._printed_at = key, time.monotonic()
            self.out.flush()

    def _fit(self, text: str) -> str:
        width = shutil.get_terminal_size((120, 20)).columns - 1
        return text if len(text) <= width else text[: width - 1] + "…"

    def end_status(self) -> None:
        with self.lock:
            if self.tty and self.status:
                self.out.write("\n")
                self.out.flush()
            self.status = ""


class _Stop(Exception):
    """SIGTERM, SIGHUP or Ctrl-C: stop everything."""


def _install_stop_handlers() -> None:
    stopping = False

    def handler(signum: int, frame: object) -> None:
        nonlocal stopping
        if stopping:  # a second Ctrl-C must not interrupt the shutdown that stops the children
            return
        stopping = True
        raise _Stop(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def run_demo(cfg: DemoConfig, out: TextIO = sys.stdout) -> int:
    """Run until Ctrl-C, SIGTERM or `exit_after`; returns the exit status."""
    p = _Printer(out)
    try:
        check_ports(cfg.ports)
        _prepare_run_dir(cfg.run_dir)
    except (StackError, DemoConfigError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    _install_stop_handlers()
    settings = StackSettings(
        run_dir=cfg.run_dir.resolve(),
        ports=cfg.ports,
        factor=cfg.factor,
        bridge_env=cfg.bridge_env,
        # Alertmanager's fallback receiver (alerts about the alert path, around the bridge) prints here.
        on_fallback=lambda n: p.line(f"  | FALLBACK {n.status.upper()} {', '.join(n.alertnames)} (from Alertmanager)"),
        format=cfg.format,
    )
    channels = sorted({k.split("_")[0].lower() for k in cfg.bridge_env if k.endswith(("_URL", "_HOST"))})
    p.line(
        f"demo: time scale {cfg.factor} (simulator speed {settings.speed}), scenario demo, format {cfg.format}; "
        f"bridge channels: console{''.join(', ' + c for c in channels)}. Starting…"
    )
    started = time.monotonic()
    transitions: dict[str, list[str]] = {}
    firing: set[str] = set()
    code = 0
    try:
        with run_stack(settings, on_bridge_line=p.notification) as stack:
            run = cfg.run_dir
            urls = {
                "proxy simulator": f"{stack.url('sim')}/metrics (Bearer token in {run}/secrets/sim_token)",
                "sidecar": f"{stack.url('exporter')}/ (Bearer token in {run}/prometheus/secrets/exporter_token)",
                "Prometheus": f"{stack.url('prometheus')}/alerts",
                "Alertmanager": f"{stack.url('alertmanager')}/",
                "alert bridge": f"{stack.url('bridge')}/metrics",
                "runbooks": f"{stack.url('bridge')}/runbooks",
                "fallback": f"{stack.fallback.url} (Alertmanager's receiver around the bridge)",
            }
            for name, url in urls.items():
                p.line(f"  {name:<16} {url}")
            stop_note = f"stops by itself after {cfg.exit_after:g}s" if cfg.exit_after else "Ctrl-C stops everything"
            p.line(f"demo: running, logs in {cfg.run_dir}/logs; {stop_note}")
            while cfg.exit_after is None or time.monotonic() - started < cfg.exit_after:
                stack.check_alive()
                st = read_status(http_get, stack.url("sim"), stack.url("prometheus"), stack.url("bridge"))
                elapsed = time.monotonic() - started
                now = set(st.firing)
                for alert in sorted(now - firing):
                    transitions.setdefault(alert, []).append("fired")
                    p.line(f"[{_clock(elapsed)}] FIRING   {alert} (Prometheus)")
                for alert in sorted(firing - now):
                    transitions.setdefault(alert, []).append("resolved")
                    p.line(f"[{_clock(elapsed)}] RESOLVED {alert} (Prometheus)")
                firing = now
                key = f"{st.phase}|{st.firing}|{st.delivered}|{st.dead_lettered}"
                p.show_status(format_status(st, elapsed), key)
                time.sleep(1)
    except _Stop as exc:
        p.end_status()
        p.line(f"demo: {exc}: stopping")
    except StackError as exc:
        p.end_status()
        p.line(f"demo: failed: {exc}")
        code = 1
    p.end_status()
    p.line(
        _summary(transitions, unreachable_alerts(cfg.format), cfg.format)
        + f"; stopped, nothing left running; logs in {cfg.run_dir}/logs"
    )
    return code


def _clock(elapsed: float) -> str:
    m, s = divmod(int(elapsed), 60)
    return f"{m:02d}:{s:02d}"


def _summary(transitions: dict[str, list[str]], unreachable: tuple[str, ...] = (), fmt: str = "llm") -> str:
    names = {a.split("{")[0] for a in transitions}
    done = [a for a in _TRAFFIC_ALERTS if any(k.startswith(a) and "resolved" in transitions[k] for k in transitions)]
    missing = [a for a in _TRAFFIC_ALERTS if a not in done and a not in unreachable]
    text = f"demo: fired and resolved: {', '.join(done) or 'none'}"
    if missing:
        text += f"; not completed: {', '.join(missing)}"
    if unreachable:
        text += f"; cannot fire with {fmt} (no source for what they need): {', '.join(unreachable)}"
    other = sorted(names - set(_TRAFFIC_ALERTS))
    if other:
        text += f"; other alerts seen: {', '.join(other)}"
    return text


def main(environ: Mapping[str, str] | None = None) -> int:
    """Entry point of `python -m stack demo`."""
    try:
        cfg = load_demo_config(os.environ if environ is None else environ)
    except DemoConfigError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 2
    return run_demo(cfg)
