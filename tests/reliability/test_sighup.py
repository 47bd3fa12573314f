"""SIGHUP while notifications flow: none lost, none doubled, a bad new configuration keeps the old one.

Each reload moves the channel to another URL, so a new lane starts while the old one may still hold a
delivery: the outbox hands a claimed delivery to no one else, so the new lane waits instead of sending it too.
"""

from __future__ import annotations

import asyncio
import signal

from tests.bridge.test_dispatch import eventually
from tests.reliability.support import Sink, metric, post_many, run_bridge, unique_payload

COUNT = 1000
RELOADS = 6


async def test_reloads_under_load_lose_and_double_nothing(tmp_path, figures):
    sink = Sink(delay=0.004)
    await sink.start()
    config = tmp_path / "bridge.yml"
    config.write_text(f'channels:\n  hook: {{type: webhook, url: "{sink.url("0")}"}}\n')
    env = {"BRIDGE_CONFIG": str(config), "BRIDGE_CONSOLE": "false"}
    try:
        async with run_bridge(tmp_path, figures.texts, **env) as bridge:
            sending = asyncio.create_task(
                post_many(bridge.url, [("/alerts", unique_payload(i)) for i in range(COUNT)], concurrency=8)
            )
            for n in range(1, RELOADS + 1):
                await eventually(lambda n=n: len(sink.received) >= n * COUNT // (RELOADS + 2), timeout=60)
                config.write_text(f'channels:\n  hook: {{type: webhook, url: "{sink.url(str(n))}"}}\n')
                bridge.proc.send_signal(signal.SIGHUP)
            # A broken file: the running configuration stays, and the log says why.
            await asyncio.sleep(0.2)
            config.write_text("channels: [")
            bridge.proc.send_signal(signal.SIGHUP)
            answers = await sending
            assert set(answers.values()) == {200}
            await eventually(lambda: len(sink.groups()) == COUNT, timeout=60)
            await asyncio.sleep(0.5)  # a second copy of anything would arrive now
            assert bridge.proc.returncode is None
            delivered = await metric(bridge.url, "alert_bridge_deliveries_total", channel="hook", result="delivered")
            log = bridge.log_text()
    finally:
        await sink.stop()
    groups = sink.groups()
    doubled = sum(n - 1 for n in groups.values())
    assert len(groups) == COUNT and doubled == 0
    assert "reload failed, keeping the previous configuration" in log and "BRIDGE_CONFIG" in log
    assert log.count('"configuration reloaded"') == RELOADS
    figures.record("sighup", "notifications posted while reloading", COUNT)
    figures.record("sighup", "reloads, each moving the channel to a new URL (a new lane)", RELOADS)
    figures.record("sighup", "delivered, distinct", len(groups))
    figures.record("sighup", "lost", COUNT - len(groups))
    figures.record("sighup", "delivered twice", doubled)
    figures.record("sighup", "deliveries counted by the bridge since its start", int(delivered))
    figures.record("sighup", "broken configuration on the last SIGHUP", "kept the previous one, logged why")
