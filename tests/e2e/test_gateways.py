"""LiteLLM and OpenTelemetry GenAI (Envoy AI Gateway) end to end: the simulator speaking the gateway's format,
the sidecar mapping it, the real Prometheus evaluating the project's unchanged rules (deploy/, time-scaled).
Over the demo timeline each of the four traffic alerts fires on gpt-4o during its incident, and no traffic
alert fires at any other time or on any other model. Both gateways run side by side to keep the time short."""

from __future__ import annotations

import contextlib
import json
import time
import urllib.parse
from fractions import Fraction

import pytest

from exporter.simulator.scenarios import DEMO_TIMELINE, INCIDENT_MODEL, SCENARIO_ALERTS
from stack.configs import Ports
from stack.local import LocalStack, StackSettings, http_get, run_stack
from tests.realbin import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.realbin]

FACTOR = Fraction(1, 150)  # an hour of scenario time per 24 real seconds (the sidecar polls every 100ms)
FORMATS = ("litellm", "otel-genai")
END_MINUTE = 140  # the last incident ends at 138: every alert has fired by then
# After an incident ends, its alert may stay firing while the 5m window still overlaps it, plus the scrape,
# poll and evaluation lags (scenario minutes; at this scale a second of lag under load is 2.5 of them).
# The next incident starts 10 minutes after the end of one.
RESOLVE_SLACK = 10.0
DEADLINE_S = 150


def _incidents() -> dict[str, tuple[float, float]]:
    return {
        SCENARIO_ALERTS[s.scenario]: (s.start_minute, s.end_minute)
        for s in DEMO_TIMELINE
        if s.scenario in SCENARIO_ALERTS
    }


def _scenario_minute(stack: LocalStack) -> tuple[float, float]:
    """(scenario minute now, unix time now) from the simulator."""
    status, body = http_get(f"{stack.url('sim')}/scenario")
    assert status == 200
    return json.loads(body)["scenario_minutes"], time.time()


def _firing(stack: LocalStack, start: float, end: float) -> list[tuple[str, str, float]]:
    """(alertname, model, unix time) of every evaluation at which one of the four traffic alerts was firing."""
    step = float(FACTOR) * 15
    query = urllib.parse.urlencode(
        {
            "query": f'ALERTS{{alertstate="firing",alertname=~"{"|".join(SCENARIO_ALERTS.values())}"}}',
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{step:.4f}",
        }
    )
    status, body = http_get(f"{stack.url('prometheus')}/api/v1/query_range?{query}", timeout=10)
    assert status == 200, body[:500]
    out = []
    for series in json.loads(body)["data"]["result"]:
        labels = series["metric"]
        out += [(labels["alertname"], labels.get("model", ""), float(t)) for t, _ in series["values"]]
    return out


def test_litellm_and_otel_genai_fire_the_four_alerts_on_their_incidents_only(tmp_path):
    with contextlib.ExitStack() as stacks:
        running: dict[str, LocalStack] = {}
        for fmt in FORMATS:
            ports = Ports(
                sim=free_port(),
                exporter=free_port(),
                prometheus=free_port(),
                alertmanager=free_port(),
                bridge=free_port(),
            )
            settings = StackSettings(
                run_dir=tmp_path / fmt, ports=ports, factor=FACTOR, scenario="demo", bridge_console=False, format=fmt
            )
            running[fmt] = stacks.enter_context(run_stack(settings))
        deadline = time.monotonic() + DEADLINE_S
        try:
            while min(_scenario_minute(s)[0] for s in running.values()) < END_MINUTE:
                for stack in running.values():
                    stack.check_alive()
                assert time.monotonic() < deadline, "the demo timeline did not finish in time"
                time.sleep(0.5)

            report = {}
            for fmt, stack in running.items():
                minute, now = _scenario_minute(stack)
                started = now - minute * 60 * float(FACTOR)  # unix time of scenario minute 0
                fired = _firing(stack, started, now)

                def at(t: float, started: float = started) -> float:
                    return (t - started) / (60 * float(FACTOR))

                spans: dict[str, list[float]] = {}
                for alert, model, t in fired:
                    span = spans.setdefault(f"{alert}{{{model}}}", [at(t), at(t)])
                    span[0], span[1] = min(span[0], at(t)), max(span[1], at(t))
                report[fmt] = {k: f"{a:.1f}-{b:.1f}" for k, (a, b) in spans.items()}
                print(f"{fmt}: firing, in scenario minutes: {report[fmt]}")  # shown with -s, and on failure

                for alert, model, t in fired:
                    assert model == INCIDENT_MODEL, f"{fmt}: {alert} fired on {model} at minute {at(t):.1f}"
                    assert alert in _incidents(), f"{fmt}: {alert} fired at minute {at(t):.1f}"
                    begin, end = _incidents()[alert]
                    assert begin <= at(t) <= end + RESOLVE_SLACK, (
                        f"{fmt}: {alert} firing at minute {at(t):.1f}, outside its incident {begin}-{end}"
                    )
                for alert in _incidents():
                    assert any(a == alert for a, _, _ in fired), f"{fmt}: {alert} never fired"
        except BaseException:
            print(f"firing, in scenario minutes: {report if 'report' in locals() else 'not queried'}")
            for fmt, stack in running.items():
                print(f"===== {fmt}\n{stack.diagnostics(30)}")
            raise
