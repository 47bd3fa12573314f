"""A Teams-like Workflows webhook: 202 and an empty body; 413/400 like the legacy connector; 429 past 4/s or 60/30 s."""

from __future__ import annotations

import json
import math
from collections import deque

from aiohttp import web

from tests.fakes.recorder import Answer, Recorded, Recorder

__all__ = ["FakeTeams"]

PAYLOAD_LIMIT = 28_672  # "max allowed size is 28672 bytes"
ADAPTIVE = "application/vnd.microsoft.card.adaptive"


def _not_a_card_message(body: object) -> str:
    """Why Workflows could not post this as an Adaptive Card message; written apart from the bridge's checker."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return "type must be message"
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return "attachments required"
    for a in attachments:
        if not isinstance(a, dict) or a.get("contentType") != ADAPTIVE:
            return "Workflows accept Adaptive Cards only"
        card = a.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard" or not card.get("version"):
            return "content must be an AdaptiveCard with a version"
        if not isinstance(card.get("body", []), list):
            return "card body must be a list"
    return ""


class FakeTeams(Recorder):
    """Answers like a Teams Workflows webhook, but rejects what a real flow would fail on silently.

    The real endpoint accepts anything with 202 and the flow run fails later; the fake answers 413 for a body
    over 28,672 bytes and 400 for one that is not an Adaptive Card message (as the legacy connector did), so
    that a test sees it. Throttling: more than `per_second` requests in 1 s or `per_30s` in 30 s get 429 with
    `Retry-After`. `accepted` holds the decoded bodies of the cards it took.
    """

    def __init__(self, per_second: int = 4, per_30s: int = 60) -> None:
        super().__init__()
        self.per_second = per_second
        self.per_30s = per_30s
        self._times: deque[float] = deque()  # arrival of each accepted request, for the two windows
        self.not_before = 0.0
        self.early: list[Recorded] = []  # requests that came sooner than a Retry-After allowed
        self.raw_paths: list[str] = []  # path and query exactly as sent (the signature must survive)
        self.accepted: list[dict] = []

    async def _handle(self, request: web.Request) -> web.Response:
        self.raw_paths.append(request.raw_path)
        return await super()._handle(request)

    def _wait(self, now: float) -> float | None:
        while self._times and now - self._times[0] >= 30.0:
            self._times.popleft()
        waits = []
        last_second = [t for t in self._times if now - t < 1.0]
        if len(last_second) >= self.per_second:
            waits.append(last_second[-self.per_second] + 1.0 - now)
        if len(self._times) >= self.per_30s:
            waits.append(self._times[-self.per_30s] + 30.0 - now)
        return max(waits) if waits else None

    def respond(self, rec: Recorded) -> Answer:
        if rec.at < self.not_before:
            self.early.append(rec)
        wait = self._wait(rec.at)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            self.not_before = rec.at + seconds
            error = {"error": {"code": "TooManyRequests", "message": "Rate limit is exceeded."}}
            return Answer(429, json.dumps(error), {"Retry-After": str(seconds), "Content-Type": "application/json"})
        self._times.append(rec.at)
        if len(rec.body) > PAYLOAD_LIMIT:
            return Answer(413, f"max allowed size is {PAYLOAD_LIMIT} bytes")
        try:
            body = json.loads(rec.body)
        except ValueError:
            return Answer(400, json.dumps({"error": {"code": "InvalidRequestContent", "message": "bad JSON"}}))
        problem = _not_a_card_message(body)
        if problem:
            return Answer(400, json.dumps({"error": {"code": "TriggerInputSchemaMismatch", "message": problem}}))
        self.accepted.append(body)
        return Answer(202, b"")
