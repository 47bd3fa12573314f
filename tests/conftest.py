"""Shared fixtures: the real Prometheus and Alertmanager binaries, started per test on free ports."""

from __future__ import annotations

import os

import pytest

# Loopback tests must never go through an HTTP proxy set in the environment.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
    os.environ.pop(_var, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture
def prometheus_factory(tmp_path):
    """Call with a config (YAML text) to get a running real Prometheus; stopped after the test."""
    from contextlib import ExitStack

    from tests.realbin import run_prometheus

    with ExitStack() as stack:
        count = 0

        def start(config: str, *extra_args: str):
            nonlocal count
            count += 1
            return stack.enter_context(run_prometheus(config, tmp_path / f"prometheus{count}", *extra_args))

        yield start


@pytest.fixture
def alertmanager_factory(tmp_path):
    """Call with a config (YAML text) to get a running real Alertmanager; stopped after the test."""
    from contextlib import ExitStack

    from tests.realbin import run_alertmanager

    with ExitStack() as stack:
        count = 0

        def start(config: str, *extra_args: str):
            nonlocal count
            count += 1
            return stack.enter_context(run_alertmanager(config, tmp_path / f"alertmanager{count}", *extra_args))

        yield start
