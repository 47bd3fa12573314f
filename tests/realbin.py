"""Start the real prometheus and prometheus-alertmanager binaries on loopback for tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from common.processes import free_port, running, wait_ready
from stack.local import alertmanager_argv, prometheus_argv, require_binary

__all__ = [
    "RealServer",
    "alertmanager_argv",
    "free_port",
    "prometheus_argv",
    "require_binary",
    "run_alertmanager",
    "run_process",
    "run_prometheus",
    "wait_http",
]


def wait_http(url: str, timeout: float = 15.0, proc: subprocess.Popen | None = None) -> None:
    """Wait until `url` answers 200, or fail with what the process printed."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} was ready")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except Exception as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


@dataclass
class RealServer:
    """A running binary: its base URL, work dir and log file."""

    url: str
    port: int
    workdir: Path
    log: Path
    proc: subprocess.Popen

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def reload(self) -> None:
        self.proc.send_signal(signal.SIGHUP)


@contextlib.contextmanager
def run_process(
    argv: list[str],
    log: Path,
    ready_url: str | None,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> Iterator[subprocess.Popen]:
    """Start `argv` with output to `log`, wait until `ready_url` (if any) answers 200, and always stop it."""
    full_env = None if env is None else {**os.environ, **env}
    with running(Path(argv[0]).name, argv, full_env, log, cwd=cwd) as proc:
        if ready_url is not None:
            try:
                wait_ready(ready_url, proc, timeout)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{argv[0]} did not start: {exc}") from exc
        yield proc.popen


@contextlib.contextmanager
def _run_binary(make_argv, config: str, name: str, workdir: Path, extra_args: tuple[str, ...]) -> Iterator[RealServer]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = workdir / name
    cfg.write_text(config)
    argv = make_argv(cfg, workdir / "data", port, *extra_args)
    log = workdir / "server.log"
    with run_process(argv, log, f"{url}/-/ready", cwd=workdir) as proc:
        yield RealServer(url=url, port=port, workdir=workdir, log=log, proc=proc)


def run_prometheus(config: str, workdir: Path, *extra_args: str) -> contextlib.AbstractContextManager[RealServer]:
    """Run prometheus with `config` (YAML text) in `workdir`; files it names may be placed there first."""
    return _run_binary(prometheus_argv, config, "prometheus.yml", workdir, ("--web.enable-lifecycle", *extra_args))


def run_alertmanager(config: str, workdir: Path, *extra_args: str) -> contextlib.AbstractContextManager[RealServer]:
    """Run prometheus-alertmanager with `config`, no cluster listener, storage in `workdir`."""
    return _run_binary(alertmanager_argv, config, "alertmanager.yml", workdir, extra_args)
