"""A Prometheus-like query API for bridge tests: canned matrices for query_range, an optional delay or error."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs

from aiohttp import web

from tests.fakes.recorder import Answer, Recorded, Recorder

__all__ = ["FakePrometheus"]


class FakePrometheus(Recorder):
    """`series`: label sets -> [(t, v)] for any expression; `alerts`: ALERTS series likewise; `delay` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.series: list[tuple[dict[str, str], list[tuple[float, float]]]] = []
        self.alerts: list[tuple[dict[str, str], list[tuple[float, float]]]] = []
        self.delay = 0.0
        self.queries: list[str] = []

    async def _handle(self, request: web.Request) -> web.Response:
        if self.delay:
            await asyncio.sleep(self.delay)
        return await super()._handle(request)

    def respond(self, rec: Recorded) -> Answer:
        if not rec.path.endswith("/api/v1/query_range"):
            return Answer(404, "not found")
        form = {k: v[0] for k, v in parse_qs(rec.body.decode()).items()}
        query = form.get("query", "")
        self.queries.append(query)
        chosen = self.alerts if query.startswith("ALERTS") else self.series
        result = [{"metric": labels, "values": [[t, str(v)] for t, v in points]} for labels, points in chosen]
        body = {"status": "success", "data": {"resultType": "matrix", "result": result}}
        return Answer(200, json.dumps(body), {"Content-Type": "application/json"})
