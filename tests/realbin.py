"""Start the real prometheus and prometheus-alertmanager binaries on loopback for tests."""

from __future__ import annotations

import contextlib
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["RealServer", "free_port", "run_alertmanager", "run_prometheus", "wait_http"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _require(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise RuntimeError(f"{binary} not found: run `make test`, which installs Debian's package")
    return path


@contextlib.contextmanager
def _run(argv: list[str], url: str, port: int, workdir: Path) -> Iterator[RealServer]:
    log = workdir / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    server = RealServer(url=url, port=port, workdir=workdir, log=log, proc=proc)
    try:
        try:
            wait_http(f"{url}/-/ready", proc=proc)
        except Exception as exc:
            raise RuntimeError(f"{argv[0]} did not start: {exc}\n{server.logs()[-3000:]}") from exc
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def run_prometheus(config: str, workdir: Path, *extra_args: str) -> Iterator[RealServer]:
    """Run prometheus with `config` (YAML text) in `workdir`; files it names may be placed there first."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = workdir / "prometheus.yml"
    cfg.write_text(config)
    argv = [
        _require("prometheus"),
        f"--config.file={cfg}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url={url}",
        "--web.enable-lifecycle",
        *extra_args,
    ]
    with _run(argv, url, port, workdir) as server:
        yield server


@contextlib.contextmanager
def run_alertmanager(config: str, workdir: Path, *extra_args: str) -> Iterator[RealServer]:
    """Run prometheus-alertmanager with `config`, no cluster listener, storage in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = workdir / "alertmanager.yml"
    cfg.write_text(config)
    argv = [
        _require("prometheus-alertmanager"),
        f"--config.file={cfg}",
        f"--storage.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url={url}",
        "--cluster.listen-address=",
        *extra_args,
    ]
    with _run(argv, url, port, workdir) as server:
        yield server


