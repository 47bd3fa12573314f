"""Fuzzing with hypothesis: generated and mutated v4 payloads never make the bridge answer 5xx or crash, and
every message rendered from an accepted one fits its platform's limits.

Most cases test the pure functions (validation, then rendering for every channel type) directly; a subset
goes through the real HTTP intake, after which the bridge must still be ready. `FUZZ_EXAMPLES` multiplies
the case counts (e.g. `FUZZ_EXAMPLES=10` for a long run).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.app import channel_context, create_app
from bridge.channels import CHANNEL_TYPES, create_channel
from bridge.config import BridgeConfig
from bridge.model import Channel
from bridge.payload import PayloadError, decode_notification
from bridge.routing import Routing
from tests.bridge.test_dispatch import payload

SCALE = float(os.environ.get("FUZZ_EXAMPLES", "1"))
PARSE_EXAMPLES = int(2000 * SCALE)
PER_EXAMPLE = 4  # payloads built from one example's draws: hypothesis' own cost is per example
PARSE_CASES = PARSE_EXAMPLES * PER_EXAMPLE
RENDER_CASES = int(500 * SCALE)
HTTP_CASES = int(1700 * SCALE)
MAX_BODY = 256 * 1024
_COUNTS: dict[str, int] = {}

# Any Unicode, surrogates excepted (a str holding one is not valid UTF-8; the JSON escapes are mutated in).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=16)
_FIELDS = ("version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels")
_FIELDS += ("commonAnnotations", "externalURL", "alerts")
_ALERT_FIELDS = ("status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint")


class _Builder:
    """Expands a few hypothesis draws (texts of any Unicode, and a seed) into a whole payload.

    Hypothesis spends about half a millisecond per draw on this machine; a payload drawn field by field took
    10–35 ms, so the suite could not afford 10,000 of them. The texts still come from hypothesis (and shrink),
    the shape from a seeded generator.
    """

    def __init__(self, words: list[str], seed: int, broken: bool, budget: int = 40_000) -> None:
        self.words, self.rng, self.broken = words, random.Random(seed), broken
        self.budget = budget  # characters of long values left: the payload stays around the body limit

    def text(self) -> str:
        word = self.rng.choice(self.words)
        times = self.rng.choice((1, 1, 1, 1, 7, 300, 4000))
        if times > 1 and len(word) * times <= self.budget:
            self.budget -= len(word) * times
            return word * times
        return word

    def junk(self) -> Any:
        return self.rng.choice((None, True, 0, -1, 1.5, [], {}, [self.text()], {"k": self.text()}))

    def value(self) -> Any:
        return self.junk() if self.broken and self.rng.random() < 0.05 else self.text()

    def labels(self) -> dict[str, Any]:
        return {self.text()[:64]: self.value() for _ in range(self.rng.randint(0, 5))}

    def time(self, zero: bool) -> str:
        choices = ["2026-11-27T18:03:19.553Z", "2026-11-27T18:03:19+02:00", "1970-01-01T00:00:00Z"]
        if zero:
            choices.append("0001-01-01T00:00:00Z")
        if self.broken:
            choices += [self.text(), "2026-13-45T99:00:00Z", ""]
        return self.rng.choice(choices)

    def _break(self, obj: dict[str, Any], fields: tuple[str, ...]) -> None:
        if not self.broken:
            return
        for key in self.rng.sample(fields, self.rng.choice((0, 0, 1, 2))):
            obj.pop(key, None)  # missing fields
        for key in self.rng.sample(fields, self.rng.choice((0, 0, 0, 1))):
            obj[key] = self.junk()  # wrong types

    def alert(self) -> dict[str, Any]:
        status = self.rng.choice(("firing", "resolved", "pending") if self.broken else ("firing", "resolved"))
        alert = {
            "status": status,
            "labels": {"alertname": self.text()[:80], **self.labels()},
            "annotations": self.labels(),
            "startsAt": self.time(zero=False),
            "endsAt": self.time(zero=True),
            "generatorURL": self.rng.choice((self.text(), "http://prometheus:9090/graph?g0.expr=up", "")),
            "fingerprint": self.text()[:32],
        }
        self._break(alert, _ALERT_FIELDS)
        return alert

    def payload(self) -> dict[str, Any]:
        alerts = [self.alert() for _ in range(self.rng.randint(0 if self.broken else 1, 6))]
        if self.budget > 36_000:  # large groups (of small alerts): more alerts than any one message holds
            alerts *= self.rng.choice((1, 1, 1, 3, 20))
        firing = any(isinstance(a, dict) and a.get("status") == "firing" for a in alerts)
        body = {
            "version": self.rng.choice(("4", "4", "4", "3", "")) if self.broken else "4",
            "groupKey": self.text(),
            "truncatedAlerts": self.rng.choice((0, 0, 7, -1) if self.broken else (0, 0, 7)),
            "status": "firing" if firing else "resolved",
            "receiver": self.text(),
            "groupLabels": self.labels(),
            "commonLabels": self.labels(),
            "commonAnnotations": self.labels(),
            "externalURL": self.rng.choice((self.text(), "http://alertmanager:9093")),
            "alerts": alerts,
        }
        self._break(body, _FIELDS)
        body.update({f"x-{self.text()[:20]}": self.junk() for _ in range(self.rng.randint(0, 2))})  # extra fields
        return body


@st.composite
def payloads(draw: st.DrawFn, broken: bool = True) -> dict[str, Any]:
    words = draw(st.lists(text, min_size=1, max_size=6))
    return _Builder(words, draw(st.integers(0, 2**32)), broken).payload()


@st.composite
def payload_batches(draw: st.DrawFn) -> list[bytes]:
    """PER_EXAMPLE payloads from one example's texts and seed: generated, generated, mutated, generated."""
    words = draw(st.lists(text, min_size=1, max_size=6))
    builder = _Builder(words, draw(st.integers(0, 2**32)), broken=True)
    out = [json.dumps(builder.payload()).encode() for _ in range(PER_EXAMPLE - 1)]
    return [*out, draw(mutated())]


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid payload's bytes, mutated: cut, bytes flipped or inserted, lone surrogates, deep nesting."""
    base = json.dumps(payload(alerts=draw(st.integers(1, 5))), ensure_ascii=draw(st.booleans())).encode()
    kind = draw(st.sampled_from(["cut", "flip", "insert", "surrogate", "nest", "dup"]))
    at = draw(st.integers(0, len(base)))
    if kind == "cut":
        return base[:at]
    if kind == "flip":
        return base[:at] + bytes([draw(st.integers(0, 255))]) + base[at + 1 :]
    if kind == "insert":
        return base[:at] + draw(st.binary(min_size=1, max_size=8)) + base[at:]
    if kind == "surrogate":
        return base.replace(b'"g1"', b'"\\ud800"', 1) if draw(st.booleans()) else base.replace(b"i0", b"\\udfff", 1)
    if kind == "nest":
        depth = draw(st.integers(100, 100_000))
        return b'{"version": "4", "alerts": ' + b"[" * depth + b"]" * depth + b"}"
    return base[:at] + base[at : at + 200] + base[at:]


def _channels() -> dict[str, Channel]:
    config = BridgeConfig()
    ctx = channel_context(config, None)
    out = {}
    for name, kind in CHANNEL_TYPES.items():
        out[name] = create_channel(name, kind.settings.model_validate({"type": name, **kind.placeholder}), ctx)
    return out


def _check_rendering(channels: dict[str, Channel], raw: bytes) -> bool:
    """Validate; if accepted, render on every channel type: each message within its platform's limits."""
    try:
        notification = decode_notification(raw)
    except PayloadError:
        return False
    for name, channel in channels.items():
        messages = channel.render(notification)
        assert messages, name
        for m in messages:
            assert channel.violations(m) == [], (name, channel.violations(m))
    return True


def _fuzz_settings(cases: int) -> settings:
    return settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )


def test_validation_never_raises_anything_but_a_payload_error(figures):
    accepted = 0

    @_fuzz_settings(PARSE_EXAMPLES)
    @given(payload_batches())
    def check(batch: list[bytes]) -> None:
        nonlocal accepted
        for raw in batch:
            try:
                decode_notification(raw)
                accepted += 1
            except PayloadError:
                pass

    started = time.monotonic()
    check()
    _COUNTS["validation"] = PARSE_CASES
    figures.record(
        "fuzz", f"validation cases: generated and mutated payloads ({PER_EXAMPLE} per hypothesis example)", PARSE_CASES
    )
    figures.record("fuzz", "of which accepted as v4 payloads", accepted)
    figures.record("fuzz", "validation time", f"{time.monotonic() - started:.1f} s")


def test_every_accepted_payload_renders_within_every_platforms_limits(figures):
    channels = _channels()
    rendered = 0

    @_fuzz_settings(RENDER_CASES)
    @given(payloads(broken=False))
    def check(body: dict[str, Any]) -> None:
        nonlocal rendered
        rendered += _check_rendering(channels, json.dumps(body).encode())

    started = time.monotonic()
    check()
    figures.record("fuzz", "rendering cases, each on " + ", ".join(channels), RENDER_CASES)
    figures.record("fuzz", "of which valid and rendered (all messages within limits)", rendered)
    figures.record("fuzz", "rendering time", f"{time.monotonic() - started:.1f} s")


def test_http_intake_never_answers_5xx_and_stays_ready(tmp_path, figures):
    from aiohttp.test_utils import TestClient, TestServer

    config = BridgeConfig(data_dir=tmp_path / "data", max_body=MAX_BODY, token="fuzz-token", routing=Routing())
    loop = asyncio.new_event_loop()
    client = TestClient(TestServer(create_app(config)), loop=loop)
    loop.run_until_complete(client.start_server())
    statuses: dict[int, int] = {}
    headers = {"Authorization": "Bearer fuzz-token", "Content-Type": "application/json"}

    async def send(raw: bytes) -> int:
        async with client.post("/alerts", data=raw, headers=headers) as r:
            body = await r.text()
            assert r.status < 500, body
            return r.status

    # Around the body limit (a drawn size of filler, cheaply: drawing 256 KiB byte by byte would take minutes).
    big = st.integers(MAX_BODY - 64, MAX_BODY + 64).map(lambda n: b'{"version": "4", "x": "' + b"a" * n + b'"}')

    @_fuzz_settings(HTTP_CASES)
    @given(st.one_of(payloads().map(lambda b: json.dumps(b).encode()), mutated(), big))
    def check(raw: bytes) -> None:
        status = loop.run_until_complete(send(raw))
        statuses[status] = statuses.get(status, 0) + 1

    try:
        started = time.monotonic()
        check()
        elapsed = time.monotonic() - started

        async def ready() -> int:
            async with client.get("/readyz") as r:
                return r.status

        assert loop.run_until_complete(ready()) == 200
    finally:
        loop.run_until_complete(client.close())
        loop.close()
    assert not any(s >= 500 for s in statuses)
    figures.record("fuzz", "HTTP intake cases (generated, mutated, around the body limit)", HTTP_CASES)
    figures.record("fuzz", "answers", ", ".join(f"{n} × {s}" for s, n in sorted(statuses.items())))
    figures.record("fuzz", "HTTP intake time", f"{elapsed:.1f} s")
    figures.record("fuzz", "ready afterwards", "yes")
    figures.record("fuzz", "cases in all", PARSE_CASES + RENDER_CASES + HTTP_CASES)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        pytest.param(b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply", id="deep-nesting"),
        pytest.param(
            json.dumps(payload()).replace('"group=\\"g1\\""', '"\\ud800"').encode(), "surrogate", id="lone-surrogate"
        ),
    ],
)
async def test_the_two_inputs_that_used_to_give_500(aiohttp_client, tmp_path, raw, reason):
    config = BridgeConfig(data_dir=tmp_path / "data", routing=Routing())
    client = await aiohttp_client(create_app(config))
    if reason == "surrogate":
        raw = json.dumps(payload()).encode().replace(b'"{}:{group=\\"g1\\"}"', b'"\\ud800"')
        assert b"\\ud800" in raw
    resp = await client.post("/alerts", data=raw)
    assert resp.status == 400
    assert reason in (await resp.json())["error"]
