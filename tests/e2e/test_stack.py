"""End to end, as shipped: simulator → sidecar → Prometheus → Alertmanager (real binaries, deploy/ configs
time-scaled) → bridge → Slack-like, Discord-like and SMTP. Each incident's alert arrives firing, with its
name, severity, model and value, then resolved; the bridge counts exactly those deliveries; no dead letters."""

from __future__ import annotations

import json
import re
import time
import urllib.parse
import urllib.request
from fractions import Fraction

import pytest

from stack.configs import Ports
from stack.local import LocalStack, StackSettings, http_get, run_stack
from stack.status import deliveries
from tests.e2e.receivers import Received, Receivers
from tests.realbin import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.realbin]

FACTOR = Fraction(1, 120)  # an hour of scenario time per 30 real seconds; the simulator runs at speed 120
DEADLINE_S = 300  # the whole test, start to stop: a hang fails here instead of running on
MODEL = "gpt-4o"  # every incident of the simulator hits this model only
CHANNELS = ("slack", "discord", "email")


class _Value:
    """How an alert's description states its value, and the range that value must fall in: above the
    alert's threshold, and no further than what the simulator's incident produces."""

    def __init__(self, pattern: str, low: float, high: float) -> None:
        self.pattern, self.low, self.high = re.compile(pattern), low, high

    def check(self, text: str) -> float:
        m = self.pattern.search(text)
        assert m, f"no value matching {self.pattern.pattern!r} in:\n{text[:3000]}"
        value = float(m[1])
        assert self.low < value <= self.high, f"value {value} outside ({self.low}, {self.high}]"
        return value


# (scenario, alert, severity, value). Failure burst: 40 % failures; latency spike: p95 within the (2, 5] bucket;
# request surge: 4x requests; token surge: 7x tokens per request.
INCIDENTS = [
    ("failure-burst", "LLMHighFailureRate", "critical", _Value(r"([\d.]+)% of the requests to gpt-4o", 20, 42)),
    ("latency-spike", "LLMHighLatency", "warning", _Value(r"is ([\d.]+)s over the last", 2, 5)),
    ("request-surge", "LLMRequestSurge", "warning", _Value(r"run at ([\d.]+) times", 3, 4.4)),
    ("token-surge", "LLMTokenSurge", "warning", _Value(r"run at ([\d.]+) times", 5, 7.7)),
]


class Deadline:
    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def wait_for(self, what: str, check, stack: LocalStack, poll: float = 0.25):
        """Poll `check()` until it returns something truthy; fail with `what` at the overall deadline."""
        while True:
            stack.check_alive()
            result = check()
            if result:
                return result
            if time.monotonic() > self.end:
                raise AssertionError(f"overall deadline of {DEADLINE_S}s passed waiting for {what}")
            time.sleep(poll)


def _post_scenario(stack: LocalStack, name: str) -> None:
    req = urllib.request.Request(
        f"{stack.url('sim')}/scenario",
        data=json.dumps({"scenario": name}).encode(),
        headers={"Authorization": f"Bearer {stack.sim_token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=5) as r:
        assert r.status == 200


def _has_history(stack: LocalStack) -> bool:
    """Whether Prometheus holds the sidecar's request counter from 65 scaled minutes ago."""
    offset = stack.settings.scaled("65m")
    query = urllib.parse.urlencode({"query": f"group(llm_requests_total offset {offset})"})
    status, body = http_get(f"{stack.url('prometheus')}/api/v1/query?{query}")
    return status == 200 and bool(json.loads(body)["data"]["result"])


def _about(msgs: list[Received], alert: str, status: str) -> list[Received]:
    return [m for m in msgs if m.status == status and alert in m.text and MODEL in m.text]


@pytest.fixture
def receivers():
    with Receivers() as r:
        yield r


@pytest.fixture
def stack(tmp_path, receivers):
    ports = Ports(
        sim=free_port(), exporter=free_port(), prometheus=free_port(), alertmanager=free_port(), bridge=free_port()
    )
    settings = StackSettings(
        run_dir=tmp_path / "run",
        ports=ports,
        factor=FACTOR,
        scenario="steady",
        bridge_env=receivers.bridge_env(),
        bridge_console=False,  # only the three destinations under test
    )
    with run_stack(settings) as running:
        yield running
    # run_stack has stopped every process it started, whatever happened in the test.
    assert all(not p.alive() for p in running.procs.values())


def test_each_incident_reaches_slack_discord_and_email_then_resolves(stack, receivers):
    deadline = Deadline(DEADLINE_S)
    try:
        for scenario, alert, severity, value in INCIDENTS:
            if scenario.endswith("surge"):
                # The surge alerts need the scaled hour (and 5 minutes) of steady history behind their baseline;
                # the first two incidents leave request and token rates as they were.
                deadline.wait_for("65 scaled minutes of history in Prometheus", lambda: _has_history(stack), stack)
            _post_scenario(stack, scenario)
            deadline.wait_for(
                f"{alert} firing on every channel",
                lambda a=alert: all(_about(receivers.received()[c], a, "FIRING") for c in CHANNELS),
                stack,
            )
            for channel in CHANNELS:
                msg = _about(receivers.received()[channel], alert, "FIRING")[0]
                assert re.search(rf"\b{severity}\b", msg.text), f"{channel}: no severity {severity}:\n{msg.text}"
                value.check(msg.text)
            _post_scenario(stack, "steady")
            deadline.wait_for(
                f"{alert} resolved on every channel",
                lambda a=alert: all(_about(receivers.received()[c], a, "RESOLVED") for c in CHANNELS),
                stack,
            )

        # Exactly one firing and one resolved message per incident and channel, and nothing else.
        got = receivers.received()
        for channel in CHANNELS:
            assert len(got[channel]) == 2 * len(INCIDENTS), (channel, [m.text[:200] for m in got[channel]])
            for _, alert, _, _ in INCIDENTS:
                assert len(_about(got[channel], alert, "FIRING")) == 1, (channel, alert)
                assert len(_about(got[channel], alert, "RESOLVED")) == 1, (channel, alert)

        # The bridge counts exactly what the destinations received, and dead-lettered nothing.
        status, body = http_get(f"{stack.url('bridge')}/metrics")
        assert status == 200
        delivered, dead = deliveries(body.decode())
        assert {c: delivered.get(c, 0) for c in CHANNELS} == {c: len(got[c]) for c in CHANNELS}, delivered
        assert dead == 0
        dead_series = [
            line
            for line in body.decode().splitlines()
            if line.startswith("alert_bridge_dead_letters_total{") and not line.endswith(" 0.0")
        ]
        assert dead_series == []
    except BaseException:
        print(stack.diagnostics(60))
        print({c: [(m.status, m.text[:300]) for m in msgs] for c, msgs in receivers.received().items()})
        raise
