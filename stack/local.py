"""The whole stack on loopback without Docker: simulator → sidecar → Prometheus → Alertmanager → bridge."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from common.processes import Proc, ProcessGroup, wait_ready
from stack.configs import DEFAULT_PORTS, DEPLOY_DIR, Ports, render_alertmanager, render_prometheus, write_secret
from stack.fallback import FallbackNotification, FallbackReceiver
from stack.timescale import format_duration, parse_duration

__all__ = [
    "SERVICES",
    "LocalStack",
    "PortInUse",
    "StackError",
    "StackSettings",
    "alertmanager_argv",
    "check_ports",
    "http_get",
    "prometheus_argv",
    "require_binary",
    "run_stack",
]

# Service key → (what it is, the env var that moves it in the demo).
SERVICES = {
    "sim": ("proxy simulator", "DEMO_SIM_PORT"),
    "exporter": ("sidecar", "DEMO_EXPORTER_PORT"),
    "prometheus": ("Prometheus", "DEMO_PROMETHEUS_PORT"),
    "alertmanager": ("Alertmanager", "DEMO_ALERTMANAGER_PORT"),
    "bridge": ("alert bridge", "DEMO_BRIDGE_PORT"),
}
# Settings the runner owns for each child; inherited values would silently change what runs.
_OWNED_PREFIXES = (
    "SIM_",
    "EXPORTER_",
    "LLM_PROXY_",
    "BRIDGE_",
    "SLACK_",
    "DISCORD_",
    "TEAMS_",
    "SMTP_",
    "EMAIL_",
    "WEBHOOK_",
)
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
# The sidecar's and Prometheus's documented defaults, scaled like every duration in deploy/.
_EXPORTER_POLL = "15s"
_EXPORTER_WINDOWS = ("1m", "5m")
_EXPORTER_BASELINE = "1h"
_PROMETHEUS_RESEND_DELAY = "1m"


class StackError(RuntimeError):
    """The local stack could not start or a process died; the message carries what it printed."""


class PortInUse(StackError):
    """A port the stack needs is taken."""


@dataclass(frozen=True)
class StackSettings:
    """What to run: where, on which ports, how fast, and the bridge's channel settings."""

    run_dir: Path
    ports: Ports = DEFAULT_PORTS
    factor: Fraction = Fraction(1, 60)
    scenario: str = "demo"
    bridge_env: Mapping[str, str] = field(default_factory=dict)
    bridge_console: bool = True
    deploy_dir: Path = DEPLOY_DIR
    ready_timeout: float = 30.0
    on_fallback: Callable[[FallbackNotification], None] | None = None
    format: str = "llm"  # the simulator's metric format, and the sidecar's mapping for it

    @property
    def speed(self) -> Fraction:
        """Simulator speed (scenario minutes per real minute) matching the time scale."""
        return 1 / self.factor

    def scaled(self, duration: str) -> str:
        """A Prometheus duration scaled by the factor (`15s` at 1/60 → `250ms`)."""
        return format_duration(round(parse_duration(duration) * self.factor))

    def scaled_seconds(self, duration: str) -> float:
        return parse_duration(duration) * float(self.factor) / 1000


@dataclass
class LocalStack:
    """A running stack: URLs, tokens and the processes."""

    settings: StackSettings
    group: ProcessGroup
    sim_token: str
    exporter_token: str
    bridge_token: str
    fallback: FallbackReceiver
    procs: dict[str, Proc] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{getattr(self.settings.ports, service)}"

    def check_alive(self) -> None:
        """Raise StackError with the log tail of any child that has exited."""
        dead = [p for p in self.procs.values() if not p.alive()]
        if dead:
            raise StackError("\n".join(f"{p.name} exited with {p.popen.returncode}:\n{p.tail(30)}" for p in dead))

    def diagnostics(self, lines: int = 40) -> str:
        """The tail of every child's log, for a failure report."""
        return "\n".join(f"----- {p.name} ({p.log}) -----\n{p.tail(lines)}" for p in self.procs.values())


def check_ports(ports: Ports) -> None:
    """Raise PortInUse naming the service and the env var to set if a port on 127.0.0.1 is taken."""
    for key, (what, var) in SERVICES.items():
        port = getattr(ports, key)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError as exc:
                raise PortInUse(
                    f"port {port} for the {what} is already in use ({exc.strerror}): set {var} to a free port"
                ) from None


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def http_get(url: str, token: str | None = None, timeout: float = 2.0) -> tuple[int, bytes]:
    """GET `url` (Bearer `token` if given) → (status, body); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with _OPENER.open(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait(stack: LocalStack, proc: Proc, url: str, token: str | None = None) -> None:
    try:
        wait_ready(url, proc, stack.settings.ready_timeout, {"Authorization": f"Bearer {token}"} if token else None)
    except (RuntimeError, TimeoutError) as exc:
        raise StackError(f"{exc}") from None


def _base_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWNED_PREFIXES) and k not in _PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"  # console notifications must show as they are delivered
    return env


def _tool(name: str) -> str:
    """A console script of this project: beside the running interpreter (the venv), else on PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found: install the project (make venv)")
    return found


def require_binary(name: str) -> str:
    """The path of a Debian-packaged binary (prometheus, promtool, ...), or an error naming what installs it."""
    found = shutil.which(name)
    if found is None:
        raise StackError(f"{name} not found: run `make demo` or `make test`, which install Debian's package")
    return found


def prometheus_argv(config_file: Path, data_dir: Path, port: int, *extra: str) -> list[str]:
    """Prometheus on 127.0.0.1:`port` with data in `data_dir`: the demo's, the e2e test's and the tests' own."""
    return [
        require_binary("prometheus"),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url=http://127.0.0.1:{port}",
        *extra,
    ]


def alertmanager_argv(config_file: Path, data_dir: Path, port: int, *extra: str) -> list[str]:
    """Alertmanager on 127.0.0.1:`port`, without the cluster listener its default puts on 0.0.0.0:9094."""
    return [
        require_binary("prometheus-alertmanager"),
        f"--config.file={config_file}",
        f"--storage.path={data_dir}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url=http://127.0.0.1:{port}",
        "--cluster.listen-address=",
        *extra,
    ]


@contextlib.contextmanager
def run_stack(settings: StackSettings, on_bridge_line: Callable[[str], None] | None = None) -> Iterator[LocalStack]:
    """Start all five services on loopback, wait until each is ready, and stop every one of them on exit."""
    s, p = settings, settings.ports
    run = s.run_dir
    run.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(
        settings=s,
        group=ProcessGroup(run / "logs"),
        sim_token=secrets.token_urlsafe(24),
        exporter_token=secrets.token_urlsafe(24),
        bridge_token=secrets.token_urlsafe(24),
        # Alertmanager's receiver for the alert path's own alerts, which must not depend on the bridge.
        fallback=FallbackReceiver(s.on_fallback),
    )
    prom_cfg = render_prometheus(run / "prometheus", p, s.factor, stack.exporter_token, s.deploy_dir)
    am_cfg = render_alertmanager(
        run / "alertmanager", p, s.factor, stack.bridge_token, s.deploy_dir, fallback_url=stack.fallback.url
    )
    sim_token_file = write_secret(run / "secrets" / "sim_token", stack.sim_token)
    base = _base_env()
    try:
        with stack.fallback, stack.group:
            stack.procs["sim"] = stack.group.start(
                "llm-proxy-sim",
                [_tool("llm-proxy-sim")],
                env={
                    **base,
                    "SIM_LISTEN": f"127.0.0.1:{p.sim}",
                    "SIM_TOKEN_FILE": str(sim_token_file),
                    "SIM_SCENARIO": s.scenario,
                    "SIM_SPEED": _num(s.speed),
                    "SIM_FORMAT": s.format,
                },
            )
            # One at a time, each ready before the next: a sidecar polling a simulator that is not up yet
            # would report the proxy down, and Prometheus scraping a sidecar not up yet, the sidecar down.
            _wait(stack, stack.procs["sim"], f"{stack.url('sim')}/healthz")
            stack.procs["exporter"] = stack.group.start(
                "llm-exporter",
                [_tool("llm-exporter")],
                env={
                    **base,
                    "LLM_PROXY_URL": f"{stack.url('sim')}/metrics",
                    "LLM_PROXY_TOKEN_FILE": str(sim_token_file),
                    "EXPORTER_LISTEN": f"127.0.0.1:{p.exporter}",
                    "EXPORTER_TOKEN_FILE": str(prom_cfg.parent / "secrets" / "exporter_token"),
                    "EXPORTER_POLL_INTERVAL": _num(s.scaled_seconds(_EXPORTER_POLL)),
                    # Bare seconds: a scaled window can be fractional (2.5), which no unit form can say.
                    "EXPORTER_WINDOWS": ",".join(_num(s.scaled_seconds(w)) for w in _EXPORTER_WINDOWS),
                    "EXPORTER_BASELINE": _num(s.scaled_seconds(_EXPORTER_BASELINE)),
                    "EXPORTER_MAPPING": s.format,  # a preset of the same name for every simulator format
                },
            )
            _wait(stack, stack.procs["exporter"], f"{stack.url('exporter')}/readyz")
            stack.procs["bridge"] = stack.group.start(
                "alert-bridge",
                [_tool("alert-bridge")],
                env={
                    **base,
                    **s.bridge_env,
                    "BRIDGE_LISTEN": f"127.0.0.1:{p.bridge}",
                    "BRIDGE_TOKEN_FILE": str(am_cfg.parent / "secrets" / "bridge_token"),
                    "BRIDGE_DATA_DIR": str(run / "bridge-data"),
                    "BRIDGE_CONSOLE": "1" if s.bridge_console else "0",
                    # Scaled like Alertmanager's repeat_interval, so reminders are not taken for duplicates.
                    "BRIDGE_DEDUPE_WINDOW": _num(s.scaled_seconds("2m")),
                },
                on_stdout_line=on_bridge_line,
            )
            _wait(stack, stack.procs["bridge"], f"{stack.url('bridge')}/readyz")
            am_url = stack.url("alertmanager")
            stack.procs["alertmanager"] = stack.group.start(
                "alertmanager",
                alertmanager_argv(am_cfg, run / "alertmanager-data", p.alertmanager),
                env=base,
                cwd=am_cfg.parent,
            )
            _wait(stack, stack.procs["alertmanager"], f"{am_url}/-/ready")
            prom_url = stack.url("prometheus")
            stack.procs["prometheus"] = stack.group.start(
                "prometheus",
                prometheus_argv(
                    prom_cfg,
                    run / "prometheus-data",
                    p.prometheus,
                    # How often a firing alert is re-sent to Alertmanager: scaled like every other duration.
                    f"--rules.alert.resend-delay={s.scaled(_PROMETHEUS_RESEND_DELAY)}",
                ),
                env=base,
                cwd=prom_cfg.parent,
            )
            _wait(stack, stack.procs["prometheus"], f"{prom_url}/-/ready")
            yield stack
    finally:
        # Tokens live only as long as the run.
        for f in (sim_token_file, prom_cfg.parent / "secrets/exporter_token", am_cfg.parent / "secrets/bridge_token"):
            f.unlink(missing_ok=True)


def _num(value: float | Fraction) -> str:
    """A number as the children's flags take it: `60`, `0.25`."""
    f = float(value)
    # Never an exponent (`1e-05`): durations are Prometheus syntax or plain decimal seconds.
    return str(int(f)) if f.is_integer() else f"{f:.6f}".rstrip("0").rstrip(".")
