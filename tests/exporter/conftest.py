"""Fixtures for the sidecar's tests: fake upstreams and a sidecar built by the real app factory."""

from __future__ import annotations

import pytest

from exporter.app import create_app
from exporter.config import Config
from exporter.keys import AppKeys
from tests.exporter.fake_upstream import FakeUpstream


@pytest.fixture
async def upstream_factory():
    """Call to get a started FakeUpstream; all are closed after the test."""
    started: list[FakeUpstream] = []

    async def make(token: str | None = "upstream-secret") -> FakeUpstream:
        up = FakeUpstream(token)
        await up.start()
        started.append(up)
        return up

    yield make
    for up in started:
        await up.close()


@pytest.fixture
async def upstream(upstream_factory) -> FakeUpstream:
    return await upstream_factory()


@pytest.fixture
def sidecar(aiohttp_client):
    """Call with a Config to get (test client, poller); the poller's first poll has run."""

    async def make(config: Config):
        client = await aiohttp_client(create_app(config))
        poller = client.app[AppKeys.POLLER]
        await poller.first_poll.wait()
        return client, poller

    return make
