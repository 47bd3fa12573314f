"""Bridge speed against its baselines: durable intake vs a bare aiohttp handler, and latest state wins.

Everything runs as subprocesses on 127.0.0.1: the bridge, a bare server (the baseline and the delivery sink)
and the load generator (this module's `load` command), so the load tool never shares a process with a server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.processes import free_port, running, wait_ready

__all__ = ["main"]

INTAKE_RATIO_TARGET = 0.5
P99_TARGET_MS = 25.0
OFFERED_RATE = 500
LATEST_SLACK = 1.10  # resolves done within 10 % of the limit's minimum


@dataclass(frozen=True)
class Row:
    what: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    ok: bool | None = None  # None: informational


# ---------------------------------------------------------------- the helper processes (subcommands)


def _payload(group: str, alerts: int) -> dict[str, Any]:
    items = [
        {
            "status": "firing",
            "labels": {"alertname": "LLMHighFailureRate", "severity": "critical", "model": group, "instance": f"i{i}"},
            "annotations": {"summary": f"alert {i} of {group}", "description": "failure ratio above 20 %"},
            "startsAt": "2026-11-27T18:03:19.553Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": f"{group}-{i}",
        }
        for i in range(alerts)
    ]
    return {
        "receiver": "bridge",
        "status": "firing",
        "alerts": items,
        "groupLabels": {"model": group},
        "commonLabels": {"alertname": "LLMHighFailureRate", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": f'{{}}:{{model="{group}"}}',
        "truncatedAlerts": 0,
    }


def _bare(port: int) -> None:
    """The baseline: an aiohttp handler that answers 202 and drops the body (also the delivery sink)."""
    from aiohttp import web

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=202)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_get("/healthz", ok)
    app.router.add_post("/{tail:.*}", handle)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.5) - 1))] if ordered else 0.0


async def _load(args: argparse.Namespace) -> dict[str, Any]:
    import aiohttp

    bodies = [
        json.dumps(_payload(f"{args.prefix}-{i if args.unique else 0}", args.alerts)).encode()
        for i in range(args.requests)
    ]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {args.token}"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int, scheduled: float | None) -> None:
            start = time.perf_counter() if scheduled is None else scheduled
            async with session.post(args.url, data=bodies[i], headers=headers) as r:
                await r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1
            latencies.append(time.perf_counter() - start)

        begin = time.perf_counter()
        if args.rate:  # open loop: latency counted from when the request was due (no coordinated omission)
            tasks = []
            for i in range(args.requests):
                due = begin + i / args.rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i, due)))
            await asyncio.gather(*tasks)
        else:
            pending = iter(range(args.requests))

            async def worker() -> None:
                for i in pending:
                    await one(i, None)

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        elapsed = time.perf_counter() - begin
    return {
        "rps": args.requests / elapsed,
        "p50_ms": _percentile(latencies, 0.5) * 1000,
        "p99_ms": _percentile(latencies, 0.99) * 1000,
        "statuses": statuses,
    }


# ---------------------------------------------------------------- the measurements


class _Bench:
    def __init__(self, stack: ExitStack, tmp: Path, quick: bool) -> None:
        self.stack, self.tmp, self.quick = stack, tmp, quick
        self.token = secrets.token_urlsafe(24)
        self.env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        self.runs = 0

    def _start(self, name: str, argv: list[str], env: dict[str, str], url: str) -> None:
        proc = self.stack.enter_context(running(name, argv, env, self.tmp / f"{name}.log"))
        wait_ready(url, proc, 20)

    def bare(self, name: str) -> int:
        port = free_port()
        argv = [sys.executable, "-m", "benchmarks.bridge", "bare", "--port", str(port)]
        self._start(name, argv, self.env, f"http://127.0.0.1:{port}/healthz")
        return port

    def bridge(self, name: str, **env: str) -> int:
        port = free_port()
        full = {
            **self.env,
            "BRIDGE_LISTEN": f"127.0.0.1:{port}",
            "BRIDGE_DATA_DIR": str(self.tmp / name),
            "BRIDGE_TOKEN": self.token,
            "BRIDGE_LOG_LEVEL": "WARNING",
            **env,
        }
        self._start(name, [sys.executable, "-m", "bridge"], full, f"http://127.0.0.1:{port}/healthz")
        return port

    def load(self, url: str, *, alerts: int, unique: bool, requests: int, rate: int = 0) -> dict[str, Any]:
        self.runs += 1
        argv = [
            sys.executable, "-m", "benchmarks.bridge", "load", "--url", url, "--alerts", str(alerts),
            "--requests", str(requests), "--concurrency", "32", "--token", self.token, "--rate", str(rate),
            "--prefix", f"r{self.runs}-{secrets.token_hex(4)}",
        ]  # fmt: skip
        if unique:
            argv.append("--unique")
        out = self.tmp / f"load{self.runs}.json"
        with out.open("w") as fh:
            import subprocess

            subprocess.run(argv, stdout=fh, check=True, env=self.env, timeout=300)
        return json.loads(out.read_text())


def _intake(bench: _Bench) -> list[Row]:
    sink = bench.bare("sink")
    bare = bench.bare("bare")
    bridge = bench.bridge(
        "bridge-intake", BRIDGE_MAX_QUEUE="100000000", WEBHOOK_URL=f"http://127.0.0.1:{sink}/hook", BRIDGE_CONSOLE="0"
    )
    requests = 600 if bench.quick else 3000
    reps = 1 if bench.quick else 3
    rows: list[Row] = []
    for alerts in (1, 20):
        for unique in (True, False):
            ratios, bare_rps, bridge_rps = [], [], []
            for rep in range(reps):
                order = [("bare", bare), ("bridge", bridge)]
                results = {}
                for who, port in order if rep % 2 == 0 else reversed(order):
                    results[who] = bench.load(
                        f"http://127.0.0.1:{port}/alerts", alerts=alerts, unique=unique, requests=requests
                    )
                bad = {s for s in results["bridge"]["statuses"] if int(s) >= 300}
                if bad:
                    raise RuntimeError(f"bridge answered {sorted(bad)} during the intake benchmark")
                bare_rps.append(results["bare"]["rps"])
                bridge_rps.append(results["bridge"]["rps"])
                ratios.append(results["bridge"]["rps"] / results["bare"]["rps"])
            ratio = statistics.median(ratios)
            kind = "unique" if unique else "one repeated"
            rows.append(
                Row(
                    f"intake, {alerts} alert(s) per payload, {kind} payloads, requests/s",
                    f"{statistics.median(bridge_rps):,.0f}",
                    f"{statistics.median(bare_rps):,.0f}",
                    f"{ratio:.2f}×",
                    f"≥ {INTAKE_RATIO_TARGET}×",
                    ratio >= INTAKE_RATIO_TARGET,
                )
            )
    # The explanation of the gap: the same intake with no channel, so the bridge does no delivery work beside it.
    alone = bench.bridge("bridge-alone", BRIDGE_MAX_QUEUE="100000000", BRIDGE_CONSOLE="false")
    ratios = []
    for rep in range(reps):
        pair = [("bare", bare), ("alone", alone)]
        got = {}
        for who, port in pair if rep % 2 == 0 else reversed(pair):
            got[who] = bench.load(f"http://127.0.0.1:{port}/alerts", alerts=1, unique=True, requests=requests)
        ratios.append(got["alone"]["rps"] / got["bare"]["rps"])
    rows.append(
        Row(
            "(explanation) intake alone, no channel: 1 alert, unique payloads",
            "",
            "",
            f"{statistics.median(ratios):.2f}×",
        )
    )
    seconds = 4 if bench.quick else 10
    for alerts in (1, 20):
        result = bench.load(
            f"http://127.0.0.1:{bridge}/alerts", alerts=alerts, unique=True, requests=OFFERED_RATE * seconds,
            rate=OFFERED_RATE,
        )  # fmt: skip
        rows.append(
            Row(
                f"intake p99 at {OFFERED_RATE} requests/s offered, {alerts} alert(s), {seconds} s",
                f"{result['p99_ms']:.1f} ms (p50 {result['p50_ms']:.1f} ms)",
                target=f"≤ {P99_TARGET_MS:g} ms",
                ok=result["p99_ms"] <= P99_TARGET_MS,
            )
        )
    return rows


async def _latest_state(bench: _Bench, groups: int, resolve_after: float) -> list[Row]:
    import aiohttp

    from tests.fakes.slack import FakeSlack

    slack = FakeSlack(rate=1.0, burst=3)
    await slack.start()
    try:
        port = await asyncio.to_thread(
            bench.bridge, "bridge-latest", SLACK_WEBHOOK_URL=f"{slack.url}/services/T0/B0/bench", BRIDGE_CONSOLE="0"
        )
        url = f"http://127.0.0.1:{port}/alerts"
        headers = {"Authorization": f"Bearer {bench.token}"}
        firing = [_payload(f"g{i}", 1) for i in range(groups)]
        async with aiohttp.ClientSession(headers=headers) as session:
            for body in firing:
                async with session.post(url, json=body) as r:
                    assert r.status == 200, r.status
            await asyncio.sleep(resolve_after)
            resolved_at: dict[str, float] = {}
            for body in firing:
                done = json.loads(json.dumps(body))
                done["status"] = done["alerts"][0]["status"] = "resolved"
                done["alerts"][0]["endsAt"] = "2026-11-27T18:13:19.553Z"
                async with session.post(url, json=done) as r:
                    assert r.status == 200, r.status
                resolved_at[body["groupLabels"]["model"]] = time.monotonic()
            start = min(resolved_at.values())

            def resolves() -> list[float]:
                return [r.at for r in slack.delivered if "RESOLVED" in r.body.decode()]

            deadline = time.monotonic() + groups * 3 + 30
            while len(resolves()) < groups and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            async with session.get(f"http://127.0.0.1:{port}/metrics") as r:
                metrics = await r.text()
    finally:
        await slack.stop()
    late_firing = 0
    for rec in slack.delivered:
        text = rec.body.decode()
        found = re.search(r"model=(g\d+)", text)
        if "FIRING" in text and found:
            late_firing += rec.at > resolved_at[found.group(1)] + 1.0  # beyond the one in flight at the resolve
    superseded = sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("alert_bridge_superseded_total")
    )
    took = max(resolves()) - start if len(resolves()) == groups else float("inf")
    minimum = (groups - 1) / 1.0  # one message per second after the first
    limited = sum(1 for r in slack.requests if r.status == 429)
    return [
        Row(f"latest state wins: {groups} groups resolved {resolve_after:g} s after firing, Slack limit", "", ""),
        Row("  resolves delivered, last one after the first resolve was accepted", f"{took:.1f} s",
            f"{minimum:.0f} s (limit's minimum)", f"{took / minimum:.2f}×", f"≤ {LATEST_SLACK:.2f}×",
            took <= minimum * LATEST_SLACK),
        Row("  firing messages sent after their group's resolve was accepted", str(late_firing), target="0",
            ok=late_firing == 0),
        Row("  queued firing messages superseded", f"{superseded:g}"),
        Row("  429 answers provoked", str(limited), target="0", ok=limited == 0),
    ]  # fmt: skip


async def _pacing(bench: _Bench, groups: int) -> list[Row]:
    """`groups` alert groups at once through a real Alertmanager: to the bridge (Slack and Discord channels) and,
    side by side, to Alertmanager's own Slack and Discord receivers; each pair of fakes enforces the limits."""
    import aiohttp

    from tests.fakes.discord import FakeDiscord
    from tests.fakes.slack import FakeSlack
    from tests.realbin import run_alertmanager

    fakes = {
        "bridge slack": FakeSlack(),
        "bridge discord": FakeDiscord(),
        "am slack": FakeSlack(),
        "am discord": FakeDiscord(),
    }
    for fake in fakes.values():
        await fake.start()
    try:
        port = await asyncio.to_thread(
            bench.bridge,
            "bridge-pacing",
            SLACK_WEBHOOK_URL=f"{fakes['bridge slack'].url}/services/T0/B0/bench",
            DISCORD_WEBHOOK_URL=f"{fakes['bridge discord'].url}/api/webhooks/1/bench",
            BRIDGE_CONSOLE="false",
        )
        config = f"""
route:
  receiver: bridge
  group_by: [group]
  group_wait: 1s
  group_interval: 10m
  repeat_interval: 4h
  routes:
    - {{receiver: bridge, continue: true}}
    - {{receiver: native}}
receivers:
  - name: bridge
    webhook_configs:
      - url: http://127.0.0.1:{port}/alerts
        http_config: {{authorization: {{credentials: "{bench.token}"}}}}
  - name: native
    slack_configs: [{{api_url: "{fakes["am slack"].url}/services/T0/B0/am", channel: "#bench"}}]
    discord_configs: [{{webhook_url: "{fakes["am discord"].url}/api/webhooks/2/am"}}]
"""
        with run_alertmanager(config, bench.tmp / "alertmanager") as am:
            alerts = [
                {"labels": {"alertname": "LLMHighFailureRate", "group": f"g{i}", "severity": "critical"},
                 "annotations": {"summary": f"group {i}"}}
                for i in range(groups)
            ]  # fmt: skip
            async with aiohttp.ClientSession() as session, session.post(f"{am.url}/api/v2/alerts", json=alerts) as r:
                assert r.status == 200, r.status
            began = time.monotonic()
            deadline = began + groups * 3 + 30
            while time.monotonic() < deadline:
                if all(len([q for q in f.requests if q.status != 429]) >= groups for f in fakes.values()):
                    break
                await asyncio.sleep(0.5)
            waited = time.monotonic() - began
    finally:
        for fake in fakes.values():
            await fake.stop()
    rows = [Row(f"pacing: {groups} groups at once through a real Alertmanager", "", "")]
    minimum = {"slack": (groups - 3) / 1.0, "discord": (math.ceil(groups / 5) - 1) * 2.0}
    for platform in ("slack", "discord"):
        took, limited, shown = {}, {}, {}
        for who in ("bridge", "am"):
            fake = fakes[f"{who} {platform}"]
            accepted = [q.at for q in fake.requests if q.status != 429]
            limited[who] = sum(1 for q in fake.requests if q.status == 429)
            took[who] = max(accepted) - min(accepted) if len(accepted) >= groups else float("inf")
            shown[who] = (
                f"{took[who]:.1f} s" if len(accepted) >= groups else f"{len(accepted)}/{groups} in {waited:.0f} s"
            )
        rows.append(
            Row(f"  {platform}: first to last message, bridge (Alertmanager's own receiver beside it)",
                f"{shown['bridge']} ({shown['am']})", f"{minimum[platform]:.0f} s (limit's minimum)",
                f"{took['bridge'] / minimum[platform]:.2f}×", f"≤ {LATEST_SLACK:.2f}×",
                took["bridge"] <= minimum[platform] * LATEST_SLACK)
        )  # fmt: skip
        rows.append(
            Row(f"  {platform}: 429 answers provoked, bridge (Alertmanager's own receiver)",
                f"{limited['bridge']} ({limited['am']})", target="0", ok=limited["bridge"] == 0)
        )  # fmt: skip
    return rows


def _table(rows: Sequence[Row]) -> str:
    out = ["| measure | bridge | baseline | ratio | target | result |", "|---|---|---|---|---|---|"]
    for r in rows:
        result = "" if r.ok is None else ("PASS" if r.ok else "MISS")
        out.append(f"| {r.what} | {r.value} | {r.baseline} | {r.ratio} | {r.target} | {result} |")
    return "\n".join(out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.bridge", description=__doc__)
    sub = p.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the benchmarks (the default)")
    run.add_argument("--quick", action="store_true", help="one short run of each (also BENCH_QUICK=1)")
    run.add_argument("--no-fail", action="store_true", help="exit 0 even when a target is missed")
    run.add_argument("--skip-latest", action="store_true", help="leave out the latest-state-wins run")
    run.add_argument("--skip-pacing", action="store_true", help="leave out the pacing run (not in --quick either)")
    run.add_argument("--skip-intake", action="store_true", help="leave out the intake runs")
    bare = sub.add_parser("bare", help="(internal) the bare baseline server")
    bare.add_argument("--port", type=int, required=True)
    load = sub.add_parser("load", help="(internal) the load generator; prints JSON")
    for name, kind in (("--url", str), ("--alerts", int), ("--requests", int), ("--concurrency", int)):
        load.add_argument(name, type=kind, required=True)
    load.add_argument("--token", required=True)
    load.add_argument("--prefix", default="r")
    load.add_argument("--rate", type=int, default=0, help="open loop at this many requests/s (0: closed loop)")
    load.add_argument("--unique", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "bare":
        _bare(args.port)
        return 0
    if args.command == "load":
        print(json.dumps(asyncio.run(_load(args))))
        return 0
    quick = getattr(args, "quick", False) or os.environ.get("BENCH_QUICK") == "1"
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as tmp, ExitStack() as stack:
        bench = _Bench(stack, Path(tmp), quick)
        rows = [] if getattr(args, "skip_intake", False) else _intake(bench)
        if not getattr(args, "skip_latest", False):
            groups, after = (12, 4.0) if quick else (40, 10.0)
            rows += asyncio.run(_latest_state(bench, groups, after))
        if not quick and not getattr(args, "skip_pacing", False):
            rows += asyncio.run(_pacing(bench, 40))
    print(f"bridge benchmark ({'quick' if quick else 'full'}), {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(_table(rows))
    missed = [r.what for r in rows if r.ok is False]
    return 1 if missed and not getattr(args, "no_fail", False) else 0


if __name__ == "__main__":
    sys.exit(main())
