"""Render the deploy/ Prometheus and Alertmanager configs for a loopback run: addresses, durations, token files."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from stack.render import Fallback, copy_tree, render_receivers
from stack.timescale import scale_durations

__all__ = [
    "DEFAULT_PORTS",
    "DEPLOY_DIR",
    "Ports",
    "render_alertmanager",
    "render_prometheus",
    "rewrite_addresses",
    "write_secret",
]

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"


@dataclass(frozen=True)
class Ports:
    """Loopback ports of the five services of a local run."""

    sim: int = 8000
    exporter: int = 9470
    prometheus: int = 9090
    alertmanager: int = 9093
    bridge: int = 9095

    def by_service(self) -> dict[str, int]:
        """Compose service name → local port."""
        return {
            "llm-proxy-sim": self.sim,
            "llm-exporter": self.exporter,
            "prometheus": self.prometheus,
            "alertmanager": self.alertmanager,
            "alert-bridge": self.bridge,
        }


DEFAULT_PORTS = Ports()
# The Compose addresses the deploy files use; `localhost:<port>` (a self-scrape) is matched by port.
_COMPOSE_PORTS = DEFAULT_PORTS.by_service()
_ADDRESS = re.compile(r"(?<![\w.-])(llm-proxy-sim|llm-exporter|prometheus|alertmanager|alert-bridge|localhost):(\d+)\b")


def rewrite_addresses(text: str, ports: Ports, host: str = "127.0.0.1") -> str:
    """`text` with every Compose service address (`alert-bridge:9095`, `localhost:9090`) → `host:<local port>`."""
    local = ports.by_service()
    by_port = {port: local[name] for name, port in _COMPOSE_PORTS.items()}

    def sub(m: re.Match) -> str:
        name, port = m[1], int(m[2])
        if name == "localhost":
            if port not in by_port:
                return m[0]
            return f"{host}:{by_port[port]}"
        if port != _COMPOSE_PORTS[name]:
            return m[0]
        return f"{host}:{local[name]}"

    return _ADDRESS.sub(sub, text)


def write_secret(path: Path, value: str) -> Path:
    """Write a token file readable only by its owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return path


def _copy_rendered(src: Path, out_dir: Path, ports: Ports, factor: Fraction) -> None:
    """Copy the tree `src` into `out_dir`, YAML rendered; `secrets/` is never copied (tokens are written)."""
    copy_tree(src, out_dir, lambda rel, text: scale_durations(rewrite_addresses(text, ports), factor))


def render_prometheus(
    out_dir: Path, ports: Ports, factor: Fraction, exporter_token: str, deploy_dir: Path = DEPLOY_DIR
) -> Path:
    """Copy `deploy/prometheus` (prometheus.yml and rules/) into `out_dir`, rendered; returns the config path.

    The rules' runbook links (the bridge's page at localhost:9095) are rewritten like every address, so they
    open the local bridge's /runbooks."""
    _copy_rendered(deploy_dir / "prometheus", out_dir, ports, factor)
    write_secret(out_dir / "secrets" / "exporter_token", exporter_token)
    return out_dir / "prometheus.yml"


def render_alertmanager(
    out_dir: Path,
    ports: Ports,
    factor: Fraction,
    bridge_token: str,
    deploy_dir: Path = DEPLOY_DIR,
    fallback_url: str | None = None,
) -> Path:
    """Copy `deploy/alertmanager` into `out_dir`, rendered, the fallback receiver a webhook to `fallback_url`."""
    _copy_rendered(deploy_dir / "alertmanager", out_dir, ports, factor)
    config = out_dir / "alertmanager.yml"
    config.write_text(render_receivers(config.read_text(), Fallback(webhook_url=fallback_url or "")))
    write_secret(out_dir / "secrets" / "bridge_token", bridge_token)
    return out_dir / "alertmanager.yml"
