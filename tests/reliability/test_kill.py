"""kill -9 of the bridge mid-burst: every notification answered 2xx is delivered after a restart.

Duplicates are bounded by the deliveries in flight at the kill: per lane, those sent whose "delivered" was not
on disk yet (at most IN_FLIGHT_MAX, the one on the wire included); both figures go to docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import signal

from bridge.dispatch import IN_FLIGHT_MAX
from tests.bridge.test_dispatch import eventually
from tests.reliability.support import Sink, post_many, run_bridge, unique_payload

COUNT = 1000
LANES = 4  # webhook channels with their own URLs: four lanes deliver side by side
IN_FLIGHT = LANES * IN_FLIGHT_MAX


def _config(sink: Sink) -> str:
    channels = "\n".join(f'  c{i}: {{type: webhook, url: "{sink.url(str(i))}"}}' for i in range(LANES))
    routes = "\n".join(f"  - {{path: r{i}, channels: [c{i}]}}" for i in range(LANES))
    return f"channels:\n{channels}\nroutes:\n{routes}\ndefault_channels: []\n"


def _bodies(count: int) -> list[tuple[str, dict]]:
    return [(f"/alerts/r{i % LANES}", unique_payload(i)) for i in range(count)]


async def test_kill_9_at_half_delivered_then_all_delivered(tmp_path, figures):
    sink = Sink(delay=0.01)  # a slow destination: deliveries trail intake
    await sink.start()
    (tmp_path / "bridge.yml").write_text(_config(sink))
    env = {"BRIDGE_CONFIG": str(tmp_path / "bridge.yml"), "BRIDGE_CONSOLE": "false"}
    try:
        async with run_bridge(tmp_path, figures.texts, **env) as bridge:
            answers = await post_many(bridge.url, _bodies(COUNT), concurrency=16)
            assert set(answers.values()) == {200}
            await eventually(lambda: len(sink.received) >= COUNT // 2, timeout=60)
            bridge.proc.send_signal(signal.SIGKILL)
            await bridge.proc.wait()
        before = len(sink.received)
        async with run_bridge(tmp_path, figures.texts, **env):
            await eventually(lambda: len(sink.groups()) == COUNT, timeout=60)
            await asyncio.sleep(0.5)  # anything sent twice would arrive now
    finally:
        await sink.stop()
    groups = sink.groups()
    duplicates = sum(n - 1 for n in groups.values())
    assert set(groups) == {unique_payload(i)["groupKey"] for i in range(COUNT)}
    assert duplicates <= IN_FLIGHT, f"{duplicates} duplicates, more than the {IN_FLIGHT} that can be in flight"
    figures.record("kill9", "notifications accepted (HTTP 200), each its own group, 4 lanes, sink 10 ms", COUNT)
    figures.record("kill9", "delivered before kill -9", before)
    figures.record("kill9", "delivered after restart, distinct", len(groups))
    figures.record("kill9", "lost", COUNT - len(groups))
    bound = f"duplicates (bound: deliveries in flight, {IN_FLIGHT_MAX} per lane = {IN_FLIGHT})"
    figures.record("kill9", bound, duplicates)


async def test_kill_9_during_intake_loses_nothing_that_was_answered(tmp_path, figures):
    sink = Sink()
    await sink.start()
    (tmp_path / "bridge.yml").write_text(_config(sink))
    env = {"BRIDGE_CONFIG": str(tmp_path / "bridge.yml"), "BRIDGE_CONSOLE": "false"}
    bodies = _bodies(COUNT)
    try:
        async with run_bridge(tmp_path, figures.texts, **env) as bridge:
            live: dict[str, int | str] = {}
            sending = asyncio.create_task(post_many(bridge.url, bodies, concurrency=32, results=live))
            await eventually(lambda: len(live) >= COUNT // 2 or sending.done(), timeout=60)
            bridge.proc.send_signal(signal.SIGKILL)  # group commit in full swing: between (or in) batches
            await bridge.proc.wait()
            answers = await sending
        acked = {g for g, status in answers.items() if status == 200}
        unanswered = [(p, b) for p, b in bodies if b["groupKey"] not in acked]
        async with run_bridge(tmp_path, figures.texts, **env) as bridge:
            await eventually(lambda: acked <= set(sink.groups()), timeout=60)
            # What was not answered, Alertmanager sends again: stored once, whether the first try committed or not.
            again = await post_many(bridge.url, unanswered, concurrency=16)
            assert set(again.values()) <= {200}
            await eventually(lambda: len(sink.groups()) == COUNT, timeout=60)
            await asyncio.sleep(0.5)
    finally:
        await sink.stop()
    groups = sink.groups()
    duplicates = sum(n - 1 for n in groups.values())
    assert acked and len(acked) < COUNT, "the kill should land mid-burst"
    assert duplicates <= IN_FLIGHT
    figures.record("kill9-intake", "notifications posted, 32 at a time", COUNT)
    figures.record("kill9-intake", "answered 200 before kill -9", len(acked))
    figures.record("kill9-intake", "answered 200 and delivered after restart", len(acked & set(groups)))
    figures.record("kill9-intake", "unanswered, posted again after restart (as Alertmanager retries)", len(unanswered))
    figures.record("kill9-intake", "delivered in the end, distinct", len(groups))
    figures.record("kill9-intake", "duplicates", duplicates)
