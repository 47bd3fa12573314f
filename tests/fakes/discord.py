"""A Discord-like webhook: embed limits enforced with 400, 5 per 2 s buckets with X-RateLimit-* and 429;
messages kept by id, edited with PATCH .../messages/{id}; multipart uploads; who a message would ping."""

from __future__ import annotations

import json
import re
from email import message_from_bytes
from email.policy import HTTP

from tests.fakes.recorder import Answer, Recorded, Recorder

__all__ = ["FakeDiscord"]


def _len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _invalid(body: dict) -> dict | None:
    """Discord's 50035 "Invalid Form Body" with the offending paths; written apart from the bridge's checker."""
    errors: dict = {}
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if _len(content) > 2000:
        errors["content"] = "Must be 2000 or fewer in length."
    if not content and not embeds:
        errors["content"] = "Cannot send an empty message"
    if len(embeds) > 10:
        errors["embeds"] = "Must be 10 or fewer in length."
    total = 0
    for i, e in enumerate(embeds):
        sizes = {
            "title": (_len(e.get("title") or ""), 256),
            "description": (_len(e.get("description") or ""), 4096),
            "footer.text": (_len((e.get("footer") or {}).get("text") or ""), 2048),
            "author.name": (_len((e.get("author") or {}).get("name") or ""), 256),
        }
        fields = e.get("fields") or []
        if len(fields) > 25:
            errors[f"embeds.{i}.fields"] = "Must be 25 or fewer in length."
        for k, f in enumerate(fields):
            sizes[f"fields.{k}.name"] = (_len(f.get("name") or ""), 256)
            sizes[f"fields.{k}.value"] = (_len(f.get("value") or ""), 1024)
            if not f.get("name") or not f.get("value"):
                errors[f"embeds.{i}.fields.{k}"] = "This field is required"
        for where, (size, limit) in sizes.items():
            total += size
            if size > limit:
                errors[f"embeds.{i}.{where}"] = f"Must be {limit} or fewer in length."
    if total > 6000:
        errors["embeds"] = "Embed size exceeds maximum size of 6000"
    if errors:
        return {"code": 50035, "message": "Invalid Form Body", "errors": errors}
    return None


_MENTION = re.compile(r"<@(&?)(\d+)>|@(everyone|here)")


def pings(content: str, allowed: dict | None) -> set[str]:
    """Who Discord notifies for `content` under `allowed_mentions` (its documented rules): `role:ID`, `user:ID`,
    `everyone`. Without allowed_mentions every mention in the content pings."""
    parse = set(allowed.get("parse", [])) if allowed is not None else {"users", "roles", "everyone"}
    roles = set((allowed or {}).get("roles", []))
    users = set((allowed or {}).get("users", []))
    out: set[str] = set()
    for role, ident, everyone in _MENTION.findall(content or ""):
        if everyone and "everyone" in parse:
            out.add("everyone")
        elif role and ident and ("roles" in parse or ident in roles):
            out.add(f"role:{ident}")
        elif not role and ident and ("users" in parse or ident in users):
            out.add(f"user:{ident}")
    return out


def _multipart(rec: Recorded) -> tuple[dict, dict[str, bytes]]:
    """payload_json and the files of a multipart/form-data request."""
    head = f"Content-Type: {rec.headers.get('Content-Type', '')}\r\n\r\n".encode()
    msg = message_from_bytes(head + rec.body, policy=HTTP)
    body: dict = {}
    files: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name == "payload_json":
            body = json.loads(part.get_payload(decode=True))
        elif name and name.startswith("files["):
            files[part.get_filename()] = part.get_payload(decode=True)
    return body, files


class FakeDiscord(Recorder):
    """Answers like discord.com/api/webhooks: 200 + message with ?wait=true, else 204; 400; 429 with retry_after.

    `messages` holds every posted message by id as it now reads (edits applied); `pinged` who each post notified.
    """

    def __init__(self, limit: int = 5, per: float = 2.0) -> None:
        super().__init__()
        self.limit = limit
        self.per = per
        self._window_start = 0.0
        self._used = 0
        self.not_before = 0.0
        self.early: list[Recorded] = []
        self._next_id = 1000
        self.messages: dict[str, dict] = {}
        self.pinged: list[set[str]] = []  # per POST (edits never notify)

    def _headers(self, now: float) -> dict[str, str]:
        reset_after = max(0.0, self._window_start + self.per - now)
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self._used)),
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": "fakebucket",
        }

    def respond(self, rec: Recorded) -> Answer:
        now = rec.at
        if now < self.not_before:
            self.early.append(rec)
        if now >= self._window_start + self.per:
            self._window_start, self._used = now, 0
        if self._used >= self.limit:
            headers = self._headers(now)
            retry = float(headers["X-RateLimit-Reset-After"])
            self.not_before = now + retry
            headers.update({"Retry-After": str(max(1, round(retry + 0.4999))), "Content-Type": "application/json"})
            body = {"message": "You are being rate limited.", "retry_after": retry, "global": False}
            return Answer(429, json.dumps(body), headers)
        self._used += 1
        headers = self._headers(now)
        files: dict[str, bytes] = {}
        try:
            if rec.headers.get("Content-Type", "").startswith("multipart/form-data"):
                body, files = _multipart(rec)
            else:
                body = json.loads(rec.body)
        except ValueError:
            return Answer(400, json.dumps({"code": 50109, "message": "The request body contains invalid JSON."}))
        edit = re.fullmatch(r".*/messages/(\d+)", rec.path)
        if rec.method == "PATCH" and edit:
            return self._edit(edit.group(1), body, headers)
        if rec.method != "POST":
            return Answer(405, json.dumps({"code": 0, "message": "405: Method Not Allowed"}))
        problem = _invalid(body)
        if problem:
            return Answer(400, json.dumps(problem), {**headers, "Content-Type": "application/json"})
        self._next_id += 1
        message = {
            "id": str(self._next_id),
            "type": 0,
            "content": body.get("content", ""),
            "embeds": body.get("embeds", []),
            "attachments": [{"id": str(i), "filename": n, "size": len(c)} for i, (n, c) in enumerate(files.items())],
            "edits": 0,
        }
        self.messages[message["id"]] = {**message, "files": files}
        self.pinged.append(pings(body.get("content", ""), body.get("allowed_mentions")))
        if rec.query.get("wait") != "true":
            return Answer(204, b"", headers)
        return Answer(200, json.dumps(message), {**headers, "Content-Type": "application/json"})

    def _edit(self, message_id: str, body: dict, headers: dict[str, str]) -> Answer:
        json_headers = {**headers, "Content-Type": "application/json"}
        if message_id not in self.messages:
            return Answer(404, json.dumps({"code": 10008, "message": "Unknown Message"}), json_headers)
        if "username" in body:
            return Answer(400, json.dumps({"code": 50035, "message": "Invalid Form Body"}), json_headers)
        current = self.messages[message_id]
        merged = {"content": current["content"], "embeds": current["embeds"]}
        merged.update({k: v for k, v in body.items() if k in ("content", "embeds")})
        problem = _invalid(merged)
        if problem:
            return Answer(400, json.dumps(problem), json_headers)
        current.update(merged)
        current["edits"] += 1
        answer = {k: v for k, v in current.items() if k != "files"}
        return Answer(200, json.dumps(answer), json_headers)
