"""The alert path watching itself, as shipped: kill the bridge and AlertBridgeDown reaches Alertmanager's
fallback receiver, which does not go through the bridge. Nothing arrives there while the stack is healthy."""

from __future__ import annotations

import time
from fractions import Fraction

import pytest

from stack.configs import Ports
from stack.local import StackSettings, run_stack
from tests.realbin import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.realbin]

FACTOR = Fraction(1, 120)  # AlertBridgeDown's `for: 5m` takes 2.5 s, the 15s scrape interval 125 ms
DEADLINE_S = 60


def test_bridge_killed_then_alert_bridge_down_arrives_at_the_fallback(tmp_path):
    ports = Ports(
        sim=free_port(), exporter=free_port(), prometheus=free_port(), alertmanager=free_port(), bridge=free_port()
    )
    settings = StackSettings(
        run_dir=tmp_path / "run", ports=ports, factor=FACTOR, scenario="steady", bridge_console=False
    )
    with run_stack(settings) as stack:
        try:
            # Healthy for a while (several scaled `for:` periods): nothing for the fallback.
            time.sleep(8)
            assert stack.fallback.notifications() == []
            bridge = stack.procs.pop("bridge")  # gone on purpose: check_alive must not report it
            bridge.popen.kill()
            bridge.popen.wait(10)
            killed = time.monotonic()
            deadline = killed + DEADLINE_S
            while time.monotonic() < deadline:
                stack.check_alive()
                got = stack.fallback.notifications()
                if any(n.status == "firing" and "AlertBridgeDown" in n.alertnames for n in got):
                    break
                time.sleep(0.25)
            else:
                raise AssertionError(f"no AlertBridgeDown at the fallback within {DEADLINE_S}s: {got}")
            # Not before the scaled `for: 5m` (2.5 s) could have passed.
            assert time.monotonic() - killed > float(FACTOR) * 300
        except BaseException:
            print(stack.diagnostics(40))
            raise
