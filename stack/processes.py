"""Start child processes as one group and stop them all, leaving nothing behind."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Proc", "ProcessGroup", "tail"]

_PR_SET_PDEATHSIG = 1
try:  # looked up once here: the child between fork and exec should do as little as possible
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _child_setup() -> None:
    """Runs in the child before exec: ask the kernel for SIGTERM if the runner itself dies (even by kill -9).

    Linux ties this to the thread that forked: start children from a thread that lives as long as the runner.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def tail(path: Path, lines: int = 40) -> str:
    """The last `lines` lines of a log file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Proc:
    """One running child: its name, process, and log file (stdout and stderr)."""

    name: str
    popen: subprocess.Popen
    log: Path
    _reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 40) -> str:
        return tail(self.log, lines)


class ProcessGroup:
    """Children started in their own sessions (so a terminal's Ctrl-C reaches only the runner, which then
    stops them in reverse order); `stop()` signals each whole process group, then kills what is left."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        self._lock = threading.Lock()

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        on_stdout_line: Callable[[str], None] | None = None,
    ) -> Proc:
        """Start `argv`, logging to `<log_dir>/<name>.log`; each stdout line also goes to `on_stdout_line`."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env) if env is not None else None,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if on_stdout_line else out,
                stderr=out,
                start_new_session=True,
                preexec_fn=_child_setup,
            )
        proc = Proc(name=name, popen=popen, log=log)
        if on_stdout_line is not None:
            proc._reader = threading.Thread(
                target=_pump, args=(popen, log, on_stdout_line), name=f"{name}-stdout", daemon=True
            )
            proc._reader.start()
        with self._lock:
            self.procs.append(proc)
        return proc

    def failed(self) -> list[Proc]:
        """Children that have exited already."""
        return [p for p in self.procs if not p.alive()]

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every group (newest first), wait up to `timeout`, then SIGKILL whatever is left."""
        with self._lock:
            procs = list(reversed(self.procs))
        for p in procs:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=max(deadline - time.monotonic(), 0.05))
        for p in procs:
            # Also reaps grandchildren that a child may have left in its group.
            _signal_group(p, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.popen.wait(timeout=5)
            if p._reader is not None:
                p._reader.join(timeout=2)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: Proc, sig: signal.Signals) -> None:
    # The child is its session's leader, so its pid is its process group id.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _pump(popen: subprocess.Popen, log: Path, on_line: Callable[[str], None]) -> None:
    assert popen.stdout is not None
    with log.open("ab") as out:
        for raw in popen.stdout:
            out.write(raw)
            out.flush()
            with contextlib.suppress(Exception):  # a broken callback must not stop the log
                on_line(raw.decode(errors="replace").rstrip("\n"))
    popen.stdout.close()
