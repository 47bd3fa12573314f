"""Helpers shared by the sidecar's tests: a test Config, the sidecar's token, exposition parsing."""

from __future__ import annotations

import dataclasses

from prometheus_client.parser import text_string_to_metric_families

from exporter.config import Config, Window
from tests.exporter.fake_upstream import FakeUpstream

__all__ = ["AUTH", "samples", "sidecar_config", "value"]

AUTH = {"Authorization": "Bearer sidecar-secret"}


def sidecar_config(*upstreams: FakeUpstream, **overrides) -> Config:
    """A Config for tests: long poll interval (tests step with poll_once), short windows."""
    base = Config(
        upstream_urls=tuple(u.url for u in upstreams),
        upstream_token="upstream-secret",
        listen_host="127.0.0.1",
        listen_port=0,
        token="sidecar-secret",
        poll_interval=60.0,
        upstream_timeout=1.0,
        windows=(Window("2m", 120.0), Window("5m", 300.0)),
    )
    return dataclasses.replace(base, **overrides)


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition, keyed by (name, labels); parsing it also proves it is valid."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            key = (s.name, frozenset(s.labels.items()))
            assert key not in out, f"duplicate series {key}"
            out[key] = s.value
    return out


def value(parsed: dict, name: str, **labels: str) -> float | None:
    return parsed.get((name, frozenset(labels.items())))


def assert_families_once(text: str) -> None:
    """No family declared twice, and no sample line of a family far from its TYPE line."""
    typed = [line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(typed) == len(set(typed)), sorted(n for n in typed if typed.count(n) > 1)
