"""The poll loop: scrape every upstream concurrently, hand the results to the pipeline in a thread."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

import aiohttp

from exporter.config import Config
from exporter.expose import Exposition
from exporter.pipeline import Pipeline
from exporter.upstream import scrape

__all__ = ["Poller"]

log = logging.getLogger(__name__)


class Poller:
    """Polls on a fixed schedule; holds the latest Exposition and when each upstream last answered."""

    def __init__(self, config: Config, session: aiohttp.ClientSession, pipeline: Pipeline) -> None:
        self._config = config
        self._session = session
        self._pipeline = pipeline
        self._lock = asyncio.Lock()
        self.exposition: Exposition | None = None
        self.first_poll = asyncio.Event()
        self.last_success: dict[str, float] = {}  # upstream → monotonic time

    async def poll_once(self) -> Exposition:
        """Scrape all upstreams once and publish the result (tests call this to step deterministically)."""
        cfg = self._config
        async with self._lock:  # the pipeline's state is single-threaded: one poll at a time
            results = await asyncio.gather(
                *(
                    scrape(
                        self._session,
                        url,
                        label,
                        token=cfg.upstream_token,
                        timeout=cfg.scrape_timeout,
                        max_body=cfg.max_body,
                    )
                    for url, label in zip(cfg.upstream_urls, cfg.upstream_labels, strict=True)
                )
            )
            exposition = await asyncio.to_thread(self._pipeline.process, results, time.time(), time.monotonic())
            now = time.monotonic()
            for name, health in self._pipeline.health.items():
                if health.up:
                    self.last_success[name] = now
            self.exposition = exposition
            self.first_poll.set()
            return exposition

    def ready(self) -> bool:
        """True if some upstream answered within the last three poll intervals."""
        horizon = time.monotonic() - 3 * self._config.poll_interval
        return any(t >= horizon for t in self.last_success.values())

    async def run(self) -> None:
        """Poll until cancelled; a tick that overruns skips the missed ones rather than bunching up."""
        interval = self._config.poll_interval
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while True:
            try:
                await self.poll_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug in one poll must not stop the sidecar
                log.exception("poll failed")
            next_tick += interval
            now = loop.time()
            if next_tick < now:
                next_tick = now + interval - (now - next_tick) % interval
            await asyncio.sleep(next_tick - now)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the loop as a task for the duration of the context; cancel and await it on exit."""
        task = asyncio.create_task(self.run(), name="llm-exporter-poller")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
