"""A Slack-like incoming webhook: documented Block Kit limits enforced with 400, 1 msg/s with 429 + Retry-After."""

from __future__ import annotations

import json
import math

from tests.fakes.recorder import Answer, Recorded, Recorder, TokenBucket

__all__ = ["FakeSlack"]


def _len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _check_blocks(blocks: list) -> tuple[str, int]:
    """Slack's own answer words for bad blocks; written apart from the bridge's checker on purpose."""
    total = 0
    if len(blocks) > 50:
        return "invalid_blocks", 0
    for b in blocks:
        t = b.get("type")
        text = (b.get("text") or {}).get("text", "")
        total += _len(text)
        if t == "header" and (_len(text) > 150 or b["text"].get("type") != "plain_text"):
            return "invalid_blocks", 0
        if t == "section":
            fields = b.get("fields") or []
            if _len(text) > 3000 or len(fields) > 10 or any(_len(f.get("text", "")) > 2000 for f in fields):
                return "invalid_blocks", 0
            if not text and not fields:
                return "invalid_blocks", 0
            total += sum(_len(f.get("text", "")) for f in fields)
        if t == "context":
            elements = b.get("elements") or []
            if len(elements) > 10:
                return "invalid_blocks", 0
            total += sum(_len(e.get("text", "")) for e in elements)
    return "", total


class FakeSlack(Recorder):
    """Answers like hooks.slack.com: `ok`, or 400 `invalid_blocks`/`no_text`/`msg_blocks_too_long`, or 429."""

    def __init__(self, rate: float = 1.0, burst: int = 3) -> None:
        super().__init__()
        self.bucket = TokenBucket(rate, burst)
        self.not_before = 0.0  # monotonic time before which a request breaks the last Retry-After
        self.early: list[Recorded] = []  # requests that came sooner than a Retry-After allowed

    def respond(self, rec: Recorded) -> Answer:
        if rec.at < self.not_before:
            self.early.append(rec)
        wait = self.bucket.take(rec.at)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            self.not_before = rec.at + seconds
            return Answer(429, "rate_limited", {"Retry-After": str(seconds)})
        try:
            body = json.loads(rec.body)
        except ValueError:
            return Answer(400, "invalid_payload")
        blocks = body.get("blocks") or []
        for a in body.get("attachments") or []:
            blocks = blocks + (a.get("blocks") or [])
        if not body.get("text") and not blocks:
            return Answer(400, "no_text")
        if _len(body.get("text") or "") > 40000:
            return Answer(400, "msg_too_long")
        error, total = _check_blocks(body.get("blocks") or [])
        for a in body.get("attachments") or []:
            if error:
                break
            error, more = _check_blocks(a.get("blocks") or [])
            total += more
        if error:
            return Answer(400, error)
        if total > 13000:
            return Answer(400, "msg_blocks_too_long")
        return Answer(200, "ok", {"Content-Type": "text/html"})
