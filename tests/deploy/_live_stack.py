"""Run the project's own processes (simulator, sidecar, bridge) as subprocesses on free loopback ports."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.deploy._stack_paths import venv_bin
from tests.realbin import free_port, run_process

__all__ = ["LiveStack", "live_stack"]


@dataclass
class LiveStack:
    """URLs of the running simulator, sidecar and bridge, and the token Prometheus must send the sidecar."""

    sim_url: str
    exporter_url: str
    bridge_url: str
    exporter_port: int
    bridge_port: int
    exporter_token_file: Path


def _process(argv: list[str], env: dict[str, str], log: Path, ready_url: str):
    return run_process(argv, log, ready_url, env=env, timeout=20)


@contextlib.contextmanager
def live_stack(
    workdir: Path, scenario: str = "steady", bridge_env: dict[str, str] | None = None
) -> Iterator[LiveStack]:
    """Simulator → sidecar (polling every second), and a bridge with only its console channel."""
    workdir.mkdir(parents=True, exist_ok=True)
    proxy_token, exporter_token = workdir / "llm_proxy_token", workdir / "exporter_token"
    proxy_token.write_text("proxy-secret")
    exporter_token.write_text("exporter-secret")
    sim_port, exp_port, bridge_port = free_port(), free_port(), free_port()
    sim = f"http://127.0.0.1:{sim_port}"
    exp = f"http://127.0.0.1:{exp_port}"
    bridge = f"http://127.0.0.1:{bridge_port}"
    with contextlib.ExitStack() as stack:
        stack.enter_context(
            _process(
                [str(venv_bin("llm-proxy-sim"))],
                {"SIM_LISTEN": f"127.0.0.1:{sim_port}", "SIM_TOKEN_FILE": str(proxy_token), "SIM_SCENARIO": scenario},
                workdir / "sim.log",
                f"{sim}/healthz",
            )
        )
        stack.enter_context(
            _process(
                [str(venv_bin("llm-exporter"))],
                {
                    "LLM_PROXY_URL": f"{sim}/metrics",
                    "LLM_PROXY_TOKEN_FILE": str(proxy_token),
                    "EXPORTER_TOKEN_FILE": str(exporter_token),
                    "EXPORTER_LISTEN": f"127.0.0.1:{exp_port}",
                    "EXPORTER_POLL_INTERVAL": "1",
                },
                workdir / "exporter.log",
                f"{exp}/readyz",
            )
        )
        bridge_data = workdir / "bridge-data"
        bridge_data.mkdir(exist_ok=True)
        stack.enter_context(
            _process(
                [str(venv_bin("alert-bridge"))],
                {
                    "BRIDGE_LISTEN": f"127.0.0.1:{bridge_port}",
                    "BRIDGE_DATA_DIR": str(bridge_data),
                    "BRIDGE_CONSOLE": "1",
                    **(bridge_env or {}),
                },
                workdir / "bridge.log",
                f"{bridge}/readyz",
            )
        )
        yield LiveStack(sim, exp, bridge, exp_port, bridge_port, exporter_token)
