"""A Slack-like Web API: chat.postMessage (returning `ts`), chat.update, thread replies, `ok: false` errors,
429 with Retry-After past about one message per second per channel; who each post would notify."""

from __future__ import annotations

import json
import math
import re

from tests.fakes.recorder import Answer, Recorded, Recorder, TokenBucket, texts
from tests.fakes.slack import _check_blocks

__all__ = ["FakeSlackApi", "slack_pings"]

_MENTION = re.compile(r"<!(here|channel|everyone)(?:\|[^>]*)?>|<!subteam\^([A-Z0-9]+)(?:\|[^>]*)?>|<@([UW][A-Z0-9]+)>")


def slack_pings(text: str) -> set[str]:
    """Who Slack notifies for a message text: `here`, `channel`, `everyone`, `group:S…`, `user:U…`."""
    out: set[str] = set()
    for special, group, user in _MENTION.findall(text or ""):
        out.add(special or (f"group:{group}" if group else f"user:{user}"))
    return out


class FakeSlackApi(Recorder):
    """`messages` by ts as they now read (edits applied), `replies` (thread_ts, text), `pinged` per post."""

    def __init__(self, token: str = "xoxb-test-token", rate: float = 1.0, burst: int = 3) -> None:
        super().__init__()
        self.token = token
        self.channels = {"#alerts": "C0ALERTS", "alerts": "C0ALERTS", "C0ALERTS": "C0ALERTS"}
        self.messages: dict[str, dict] = {}
        self.replies: list[tuple[str, str]] = []
        self.reply_errors: list[str] = []  # `ok: false` errors to answer the next thread replies with
        self.pinged: list[set[str]] = []
        self.bucket = TokenBucket(rate, burst)
        self.not_before = 0.0
        self.early: list[Recorded] = []
        self._ts = 1_780_000_000

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    @staticmethod
    def _ok(data: dict) -> Answer:
        return Answer(200, json.dumps({"ok": True, **data}), {"Content-Type": "application/json"})

    @staticmethod
    def _error(error: str) -> Answer:
        return Answer(200, json.dumps({"ok": False, "error": error}), {"Content-Type": "application/json"})

    def respond(self, rec: Recorded) -> Answer:
        if rec.at < self.not_before:
            self.early.append(rec)
        if rec.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error("invalid_auth")
        wait = self.bucket.take(rec.at)
        if wait is not None:
            seconds = max(1, math.ceil(wait))
            self.not_before = rec.at + seconds
            return Answer(429, json.dumps({"ok": False, "error": "ratelimited"}), {"Retry-After": str(seconds)})
        try:
            body = json.loads(rec.body)
        except ValueError:
            return self._error("invalid_json")
        method = rec.path.rsplit("/", 1)[-1]
        channel = self.channels.get(body.get("channel", ""))
        if channel is None:
            return self._error("channel_not_found")
        blocks = list(body.get("blocks") or [])
        for a in body.get("attachments") or []:
            blocks += a.get("blocks") or []
        if not body.get("text") and not blocks:
            return self._error("no_text")
        error, _ = _check_blocks(blocks)
        if error:
            return self._error(error)
        if method == "chat.postMessage":
            return self._post(channel, body)
        if method == "chat.update":
            current = self.messages.get(body.get("ts", ""))
            if current is None or current["channel"] != channel:
                return self._error("message_not_found")
            current.update({k: body[k] for k in ("text", "attachments", "blocks") if k in body})
            current["edits"] += 1
            return self._ok({"channel": channel, "ts": current["ts"], "text": current["text"]})
        return self._error("unknown_method")

    def _post(self, channel: str, body: dict) -> Answer:
        self._ts += 1
        ts = f"{self._ts}.000100"
        thread = body.get("thread_ts")
        if thread is not None:
            if thread not in self.messages:
                return self._error("thread_not_found")
            if self.reply_errors:
                return self._error(self.reply_errors.pop(0))
            self.replies.append((thread, body.get("text", "")))
        else:
            self.messages[ts] = {
                "channel": channel,
                "ts": ts,
                "text": body.get("text", ""),
                "attachments": body.get("attachments", []),
                "blocks": body.get("blocks", []),
                "edits": 0,
            }
        # Slack notifies for mentions in the text and in mrkdwn blocks of a new message (never on an edit).
        self.pinged.append(set().union(*(slack_pings(t) for t in texts(body))))
        return self._ok({"channel": channel, "ts": ts, "message": {"text": body.get("text", ""), "ts": ts}})
