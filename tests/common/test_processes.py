"""The process group stops every child and grandchild, even stubborn ones, and even if the runner is killed."""

import os
import subprocess
import sys
import textwrap
import time

from common.processes import ProcessGroup


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0): count it as gone once it is no longer running.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def _wait_gone(pids, timeout=10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _read_pid(path, timeout=10.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise TimeoutError(path)


def test_stop_ends_children_and_their_children(tmp_path):
    pidfile = tmp_path / "grandchild.pid"
    with ProcessGroup(tmp_path / "logs") as group:
        proc = group.start("parent", ["sh", "-c", f"sleep 300 & echo $! > {pidfile}; wait"])
        grandchild = _read_pid(pidfile)
        assert proc.alive()
    assert _wait_gone([proc.pid, grandchild])


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path):
    group = ProcessGroup(tmp_path / "logs")
    ready = tmp_path / "ready"
    proc = group.start("stubborn", ["sh", "-c", f"trap '' TERM; touch {ready}; while :; do sleep 0.1; done"])
    deadline = time.monotonic() + 10
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    group.stop(timeout=0.5)
    assert not proc.alive()
    assert proc.popen.returncode == -9


def test_stdout_lines_reach_the_callback_and_the_log(tmp_path):
    lines = []
    with ProcessGroup(tmp_path / "logs") as group:
        proc = group.start("talker", ["sh", "-c", "echo one; echo two >&2; echo three"], on_stdout_line=lines.append)
        proc.popen.wait(timeout=10)
    assert lines == ["one", "three"]
    assert set(proc.log.read_text().split()) == {"one", "two", "three"}
    assert group.failed() == [proc]


def test_children_die_with_a_killed_runner(tmp_path):
    """kill -9 of the runner leaves no child behind (the kernel's parent-death signal)."""
    pidfile = tmp_path / "child.pid"
    runner = textwrap.dedent(
        f"""
        import pathlib, time
        from common.processes import ProcessGroup
        g = ProcessGroup(pathlib.Path({str(tmp_path / "logs")!r}))
        p = g.start("sleeper", ["sleep", "300"])
        pathlib.Path({str(pidfile)!r}).write_text(str(p.pid))
        time.sleep(300)
        """
    )
    outer = subprocess.Popen([sys.executable, "-c", runner])
    try:
        child = _read_pid(pidfile)
        assert not _gone(child)
    finally:
        outer.kill()
        outer.wait()
    assert _wait_gone([child])
