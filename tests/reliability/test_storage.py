"""Storage failures: a full or read-only data directory never yields a 2xx for what was not stored; a corrupt
outbox stops the start with its name, moved aside and never overwritten.

Root ignores file permissions, so the full and read-only cases use a small tmpfs and a read-only bind mount,
set up and removed here; without the right to mount they are skipped, saying so.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from common.processes import free_port
from tests.reliability.support import TOKEN, post, run_bridge, unique_payload


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextlib.contextmanager
def _mounted(target: Path, *args: str) -> Iterator[Path]:
    target.mkdir(parents=True, exist_ok=True)
    try:
        _mount(*args, str(target))
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = exc.stderr.decode(errors="replace").strip() if isinstance(exc, subprocess.CalledProcessError) else exc
        pytest.skip(f"needs root and mount (CI runs as root on Debian 12): {reason}")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


def _env(data: Path) -> dict[str, str]:
    listen = f"127.0.0.1:{free_port()}"
    return {**os.environ, "BRIDGE_DATA_DIR": str(data), "BRIDGE_TOKEN": TOKEN, "BRIDGE_LISTEN": listen}


def _fill(directory: Path) -> Path:
    """Write until the filesystem is full; the filler is returned so it can be removed."""
    filler = directory / "filler"
    # Creating the file may already fail: the filesystem is then as full as it gets.
    with contextlib.suppress(OSError), filler.open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
            os.fsync(out.fileno())
    return filler


async def test_full_data_directory_answers_503_and_recovers(tmp_path, figures):
    with _mounted(tmp_path / "data", "-t", "tmpfs", "-o", "size=2m", "tmpfs"):
        async with run_bridge(tmp_path, figures.texts, BRIDGE_CONSOLE="false", BRIDGE_MAX_BODY="1MiB") as bridge:
            async with aiohttp.ClientSession() as s:
                assert (await post(s, bridge.url, unique_payload(0)))[0] == 200
                filler = _fill(tmp_path / "data")
                big = unique_payload(1, alerts=200)  # far more than the few free bytes left
                statuses = [(await post(s, bridge.url, big))[0] for _ in range(5)]
                bodies = [(await post(s, bridge.url, unique_payload(2 + i)))[1] for i in range(3)]
                async with s.get(f"{bridge.url}/readyz") as r:
                    ready_when_full = r.status
                filler.unlink(missing_ok=True)
                status_after, _ = await post(s, bridge.url, unique_payload(9))
                async with s.get(f"{bridge.url}/readyz") as r:
                    ready_after = r.status
            figures.texts.extend(bodies)
        db = sqlite3.connect(tmp_path / "data" / "outbox.db")
        stored = {row[0] for row in db.execute("SELECT group_key FROM notifications")}
        db.close()
    assert set(statuses) == {503}, statuses
    assert ready_when_full == 503
    assert status_after == 200 and ready_after == 200
    # Nothing answered 503 is in the outbox; both 200s are.
    assert unique_payload(1)["groupKey"] not in stored
    assert {unique_payload(0)["groupKey"], unique_payload(9)["groupKey"]} <= stored
    figures.record("storage", "full data directory (2 MiB tmpfs filled): answers to 5 large notifications", "503 × 5")
    figures.record("storage", "full data directory: /readyz", ready_when_full)
    figures.record("storage", "after space is freed: intake, /readyz", f"{status_after}, {ready_after}")
    figures.record("storage", "notifications answered 503 found in the outbox", 0)


async def test_read_only_data_directory_stops_the_start_naming_it(tmp_path, figures):
    source = tmp_path / "source"
    source.mkdir()
    target = tmp_path / "data"
    with _mounted(target, "--bind", str(source)):
        _mount("-o", "remount,bind,ro", str(target))
        result = subprocess.run(
            [sys.executable, "-m", "bridge"],
            env=_env(target),
            capture_output=True,
            text=True,
            timeout=30,
        )
    figures.texts.append(result.stderr + result.stdout)
    assert result.returncode == 2
    assert "BRIDGE_DATA_DIR" in result.stderr and str(target) in result.stderr
    assert "Traceback" not in result.stderr
    figures.record("storage", "read-only data directory (bind mount) at start", "exit 2 naming BRIDGE_DATA_DIR")


async def test_corrupt_outbox_is_named_moved_aside_and_never_overwritten(tmp_path, figures):
    data = tmp_path / "data"
    data.mkdir()
    garbage = os.urandom(8192)
    earlier = b"an earlier corrupt outbox kept by the operator"
    outbox = data / "outbox.db"
    outbox.write_bytes(garbage)
    env = _env(data)
    result = subprocess.run([sys.executable, "-m", "bridge"], env=env, capture_output=True, text=True, timeout=30)
    figures.texts.append(result.stderr + result.stdout)
    assert result.returncode == 2
    assert str(outbox) in result.stderr and "corrupt" in result.stderr and "runbook" in result.stderr
    assert "Traceback" not in result.stderr
    [moved] = data.glob("outbox.db.corrupt-*")
    assert moved.read_bytes() == garbage and not outbox.exists() and str(moved) in result.stderr
    # Again within the same second: the first copy stays untouched, the second gets a name of its own.
    outbox.write_bytes(earlier)
    second = subprocess.run([sys.executable, "-m", "bridge"], env=env, capture_output=True, text=True, timeout=30)
    assert second.returncode == 2
    kept = sorted(data.glob("outbox.db.corrupt-*"))
    assert len(kept) == 2 and {p.read_bytes() for p in kept} == {garbage, earlier}
    # The next start creates an empty outbox and serves.
    async with run_bridge(tmp_path, figures.texts) as bridge, aiohttp.ClientSession() as s:
        assert (await post(s, bridge.url, unique_payload(0)))[0] == 200
    figures.record("storage", "corrupt outbox.db at start", "exit 2, names the file and where it was moved")
    figures.record("storage", "a second corrupt file in the same second", "its own name; the first kept as it was")
    figures.record("storage", "next start", "empty outbox, serving")
