"""Two bridges behind two clustered Alertmanagers on loopback: duplicates with and without gossip; bridge intake."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from benchmarks.procs import Proc, free_port, running, wait_ready
from stack.local import alertmanager_argv

__all__ = ["main"]

_BRIDGE = str(Path(sys.executable).parent / "alert-bridge")


class _Sink:
    """The bridges' webhook channel target: records each delivered payload's group and arrival time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.deliveries: list[tuple[float, str]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                group = json.loads(body).get("groupKey", "?")
                with sink.lock:
                    sink.deliveries.append((time.monotonic(), group))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def snapshot(self) -> list[tuple[float, str]]:
        with self.lock:
            return list(self.deliveries)


def _post(url: str, body: object, token: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status


def _bridge(stack: ExitStack, work: Path, name: str, token: str, sink: _Sink) -> str:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("BRIDGE_", "SLACK_", "DISCORD_", "SMTP_"))},
        "BRIDGE_LISTEN": f"127.0.0.1:{port}",
        "BRIDGE_TOKEN": token,
        "BRIDGE_DATA_DIR": str(work / name),
        "BRIDGE_CONSOLE": "false",
        "WEBHOOK_URL": sink.url,
        "NO_PROXY": "127.0.0.1",
    }
    proc = stack.enter_context(running(name, [_BRIDGE], env, work / f"{name}.log"))
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/readyz", proc, 20)
    return url


def _alertmanager(
    stack: ExitStack, work: Path, name: str, bridge: str, token: str, cluster: list[str]
) -> tuple[str, Proc]:
    """Alertmanager sending every group to `bridge`; `cluster` is [listen, peer...] or [] for no gossip."""
    (work / name).mkdir()
    config = work / name / "alertmanager.yml"
    config.write_text(
        json.dumps(
            {
                "route": {
                    "receiver": "bridge",
                    "group_by": ["alertname"],
                    "group_wait": "1s",
                    "group_interval": "5s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "bridge",
                        "webhook_configs": [
                            {
                                "url": f"{bridge}/alerts/critical",
                                "http_config": {"authorization": {"type": "Bearer", "credentials": token}},
                            }
                        ],
                    }
                ],
            }
        )
    )
    port = free_port()
    argv = alertmanager_argv(config, work / name / "data", port)
    if cluster:
        listen, *peers = cluster
        argv.remove("--cluster.listen-address=")
        argv += [f"--cluster.listen-address={listen}", f"--cluster.advertise-address={listen}"]
        argv += [f"--cluster.peer={p}" for p in peers]
    proc = stack.enter_context(running(name, argv, dict(os.environ), work / f"{name}.log"))
    url = f"http://127.0.0.1:{port}"
    wait_ready(f"{url}/-/ready", proc, 20)
    return url, proc


def _wait_cluster(urls: Sequence[str], peers: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = 0
        for url in urls:
            with urllib.request.urlopen(f"{url}/api/v2/status", timeout=5) as answer:
                status = json.load(answer)["cluster"]
            ready += status.get("status") == "ready" and len(status.get("peers") or []) == peers
        if ready == len(urls):
            return
        time.sleep(0.2)
    raise TimeoutError(f"Alertmanager cluster not ready with {peers} peers after {timeout}s")


def _position(url: str) -> int:
    """This Alertmanager's place in the cluster: it waits position × peer timeout before sending."""
    with urllib.request.urlopen(f"{url}/api/v2/status", timeout=5) as answer:
        cluster = json.load(answer)["cluster"]
    return sorted(p["name"] for p in cluster["peers"]).index(cluster["name"])


def _fire(alertmanagers: Sequence[str], groups: int, tag: str) -> float:
    """Post the same `groups` alerts to every Alertmanager, as Prometheus does; returns when they were sent."""
    now = datetime.now(UTC)
    alerts = [
        {
            "labels": {"alertname": f"HAProbe{tag}{i}", "severity": "critical"},
            "annotations": {"summary": "HA probe"},
            "startsAt": now.isoformat(),
            "endsAt": (now + timedelta(minutes=10)).isoformat(),
        }
        for i in range(groups)
    ]
    sent = time.monotonic()
    for url in alertmanagers:
        _post(f"{url}/api/v2/alerts", alerts)
    return sent


def _scenario(
    name: str,
    work: Path,
    sink: _Sink,
    groups: int,
    settle: float,
    *,
    gossip: bool,
    one_bridge: bool,
    kill_first: bool = False,
) -> dict:
    token = secrets.token_hex(16)
    with ExitStack() as stack:
        b1 = _bridge(stack, work, f"{name}-bridge1", token, sink)
        b2 = b1 if one_bridge else _bridge(stack, work, f"{name}-bridge2", token, sink)
        c1, c2 = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        am1, proc1 = _alertmanager(stack, work, f"{name}-am1", b1, token, [c1, c2] if gossip else [])
        am2, proc2 = _alertmanager(stack, work, f"{name}-am2", b2, token, [c2, c1] if gossip else [])
        if gossip:
            _wait_cluster([am1, am2], peers=2)
        targets = [am1, am2]
        if kill_first:
            # Kill the Alertmanager that would send first (position 0), with SIGKILL: a crash, not a
            # shutdown, so the survivor learns of it only through failed gossip probes.
            first = 0 if _position(am1) == 0 else 1
            victim = (proc1, proc2)[first]
            victim.proc.kill()
            victim.proc.wait()
            targets = [(am1, am2)[1 - first]]
        before = len(sink.snapshot())
        sent = _fire(targets, groups, name)
        time.sleep(settle)
        got = sink.snapshot()[before:]
    per_group = Counter(group for _, group in got)
    by_group: dict[str, list[float]] = {}
    for at, group in got:
        by_group.setdefault(group, []).append(at - sent)
    gaps = [max(times) - min(times) for times in by_group.values() if len(times) > 1]
    return {
        "scenario": name,
        "groups": groups,
        "deliveries": len(got),
        "per_group": sorted(Counter(per_group.values()).items()),
        "first_s": round(min((t for ts in by_group.values() for t in ts), default=float("nan")), 2),
        "duplicate_gap_s": round(max(gaps), 2) if gaps else None,
    }


def _throughput(work: Path, sink: _Sink, count: int, workers: int) -> dict:
    token = secrets.token_hex(16)
    with ExitStack() as stack:
        bridge = _bridge(stack, work, "rate-bridge", token, sink)
        before = len(sink.snapshot())
        now = datetime.now(UTC).isoformat()

        def one(i: int) -> int:
            payload = {
                "version": "4",
                "groupKey": f'{{}}:{{alertname="Rate{i}"}}',
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "bridge",
                "groupLabels": {"alertname": f"Rate{i}"},
                "commonLabels": {"alertname": f"Rate{i}", "severity": "warning"},
                "commonAnnotations": {"summary": "rate probe"},
                "externalURL": "http://127.0.0.1:9093",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": f"Rate{i}", "severity": "warning"},
                        "annotations": {"summary": "rate probe"},
                        "startsAt": now,
                        "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://127.0.0.1:9090/graph",
                        "fingerprint": f"{i:016x}",
                    }
                ],
            }
            return _post(f"{bridge}/alerts/warning", payload, token)

        start = time.monotonic()
        with ThreadPoolExecutor(workers) as pool:
            codes = Counter(pool.map(one, range(count)))
        accepted = time.monotonic() - start
        deadline = time.monotonic() + 120
        while len(sink.snapshot()) - before < count and time.monotonic() < deadline:
            time.sleep(0.05)
        drained = time.monotonic() - start
    return {
        "notifications": count,
        "answers": dict(codes),
        "intake_per_s": round(count / accepted),
        "delivered": len(sink.snapshot()) - before,
        "delivered_per_s": round(count / drained),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scenarios and print one JSON line each."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.alertmanager_ha", description=__doc__)
    parser.add_argument("--groups", type=int, default=5, help="alert groups fired per scenario (default 5)")
    parser.add_argument(
        "--settle", type=float, default=25.0, help="seconds to collect deliveries (> the 15s peer timeout)"
    )
    parser.add_argument("--rate-count", type=int, default=1000, help="notifications for the intake rate (default 1000)")
    parser.add_argument("--rate-workers", type=int, default=8, help="concurrent senders for the intake rate")
    args = parser.parse_args(argv)
    sink = _Sink()
    try:
        with tempfile.TemporaryDirectory(prefix="am-ha-") as tmp:
            work = Path(tmp)
            for name, gossip, one_bridge, kill_first in (
                ("gossip", True, False, False),
                ("gossip-first-alertmanager-killed", True, False, True),
                ("no-gossip", False, False, False),
                ("no-gossip-one-bridge", False, True, False),
            ):
                result = _scenario(
                    name,
                    work,
                    sink,
                    args.groups,
                    args.settle,
                    gossip=gossip,
                    one_bridge=one_bridge,
                    kill_first=kill_first,
                )
                print(json.dumps(result), flush=True)
            print(json.dumps(_throughput(work, sink, args.rate_count, args.rate_workers)), flush=True)
    finally:
        sink.server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
