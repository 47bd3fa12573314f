"""Child processes on loopback: start in their own group, wait until ready, stop the whole group for sure."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "Proc",
    "ProcessGroup",
    "cpu_seconds",
    "free_port",
    "memory_kib",
    "running",
    "stop_all",
    "tail",
    "wait_ready",
]

_PR_SET_PDEATHSIG = 1
try:  # looked up once here: the child between fork and exec should do as little as possible
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None
_CLK_TCK = os.sysconf("SC_CLK_TCK")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def _child_setup() -> None:
    """Runs in the child before exec: ask the kernel for SIGTERM if the parent dies (even by kill -9).

    Linux ties this to the thread that forked: start children from a thread that lives as long as the parent.
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


def _spawn(
    name: str,
    argv: Sequence[str],
    log: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    on_stdout_line: Callable[[str], None] | None = None,
    append: bool = True,
) -> Proc:
    """Start `argv` as the leader of a new session (so its pid is its process group id), output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab" if append else "wb") as out:
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
    return proc


def stop_all(procs: Sequence[Proc], timeout: float = 10.0) -> None:
    """SIGTERM every group in the order given, wait up to `timeout`, then SIGKILL whatever is left."""
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
        proc = _spawn(name, argv, self.log_dir / f"{name}.log", env, cwd, on_stdout_line)
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
        stop_all(procs, timeout)

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(
    name: str, argv: Sequence[str], env: Mapping[str, str] | None, log: Path, cwd: Path | None = None
) -> Iterator[Proc]:
    """Run `argv` for the duration of the context (output to `log`, truncated; `env` None: this process's);
    its whole group is stopped whatever happens."""
    proc = _spawn(name, argv, log, env, cwd, append=False)
    try:
        yield proc
    finally:
        stop_all([proc])


def wait_ready(url: str, proc: Proc, timeout: float, headers: Mapping[str, str] | None = None) -> None:
    """Wait until `url` answers 200; RuntimeError if the process exits first, TimeoutError if it takes too long
    (both with the tail of its log)."""
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail(30)}")
        request = urllib.request.Request(url, headers=dict(headers or {}))
        try:
            with _OPENER.open(request, timeout=2) as answer:
                if answer.status == 200:
                    return
                last = f"HTTP {answer.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = type(exc).__name__  # never the message: it could echo what was sent
        time.sleep(0.1)
    raise TimeoutError(f"{proc.name} not ready at {url} after {timeout:g}s ({last}):\n{proc.tail(30)}")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces: skip past it
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak resident) of a process, in KiB."""
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


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
