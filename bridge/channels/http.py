"""What the HTTP channels share: answers classified the same way (delivered, retry with how long to wait,
permanent), redacted URLs for logs, opaque lane keys, and the session to send with."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from bridge.model import Outcome, Result
from common.secrets import read_secret

__all__ = [
    "TIMEOUT",
    "Answer",
    "SessionSource",
    "classify",
    "exchange",
    "http_url",
    "lane_key",
    "parse_retry_after",
    "redact_url",
]

TIMEOUT = aiohttp.ClientTimeout(total=30, sock_connect=10)

_CODE = re.compile(r"^[a-z0-9_]{1,40}$")


def redact_url(url: str) -> str:
    """Host and a redacted path: a webhook's path is its secret (`hooks.slack.com/services/***`)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(invalid url)"
    first = parts.path.strip("/").split("/", 1)[0]
    path = f"/{first}/***" if first else "/***"
    return f"{parts.scheme}://{host}{port}{path}"


def lane_key(kind: str, secret: str) -> str:
    """An opaque lane id for a destination: the same URL gives the same lane, and the key reveals nothing."""
    return f"{kind}:{hashlib.sha256(secret.encode()).hexdigest()[:16]}"


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number >= 0 else None


def parse_retry_after(value: str | None) -> float | None:
    """`Retry-After` as seconds: a number of seconds or an HTTP date."""
    if value is None:
        return None
    seconds = _float(value.strip())
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


_DELIVERED = Result(Outcome.DELIVERED)


def classify(status: int, headers: Mapping[str, str], *, code: str = "", retry_after: float | None = None) -> Result:
    """2xx delivered; 408, 429 and 5xx retried; any other status permanent. `code` is a platform error word."""
    delivered = 200 <= status < 300
    remaining_raw, reset_raw = headers.get("X-RateLimit-Remaining"), headers.get("X-RateLimit-Reset-After")
    if delivered and remaining_raw is None and reset_raw is None:
        return _DELIVERED  # most deliveries: one shared answer, nothing for pacing to note
    remaining = int(remaining_raw) if remaining_raw is not None and remaining_raw.isdigit() else None
    reset_after = _float(reset_raw)
    if delivered:
        return Result(Outcome.DELIVERED, remaining=remaining, reset_after=reset_after)
    waits = [w for w in (parse_retry_after(headers.get("Retry-After")), retry_after) if w is not None]
    if status == 429:
        # Discord sends a bucket reset too; honour whichever asks for the longest wait.
        waits.append(reset_after or 0.0)
    wait = max(waits) if waits else None
    reason = f"http_{status}"
    if code and _CODE.match(code):  # only a short machine word: never echo a body that may hold anything
        reason = f"{reason}_{code}"
    if status in (408, 429) or status >= 500:
        return Result(Outcome.RETRY, reason, retry_after=wait, remaining=remaining, reset_after=reset_after)
    return Result(Outcome.PERMANENT, reason)


class SessionSource:
    """The app's shared session, or, where there is none (the CLI), one the channel owns and closes."""

    def __init__(self, shared: aiohttp.ClientSession | None) -> None:
        self._shared = shared
        self._own: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._shared is not None and not self._shared.closed:
            return self._shared
        if self._own is None or self._own.closed:
            self._own = aiohttp.ClientSession()
        return self._own

    async def close(self) -> None:
        if self._own is not None:
            await self._own.close()


def url_from_env(
    variable: str, key: str
) -> Callable[[Mapping[str, str]], tuple[dict[str, Any], dict[str, str]] | None]:
    """A ChannelType.from_env for a channel made by one webhook URL: `variable` (or `variable_FILE`) → `key`."""

    def from_env(env: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]] | None:
        url = read_secret(env, variable)
        return ({key: url}, {key: variable}) if url else None

    return from_env


def http_url(value: str) -> str:
    """A settings validator for webhook URLs; its message never repeats the value (a webhook URL is a secret)."""
    if not value.startswith(("http://", "https://")):
        raise ValueError("must be an http:// or https:// URL")
    return value


@dataclass(frozen=True)
class Answer:
    """What a platform answered: status, headers and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes


async def exchange(
    session: aiohttp.ClientSession, method: str, url: Any, *, data: Any, headers: Mapping[str, str]
) -> Answer | Result:
    """One request, never following redirects; a timeout or a connection failure is a Result to retry.

    The exception text of a failure names the URL, a secret: only the class of failure is kept.
    """
    try:
        async with session.request(
            method, url, data=data, headers=headers, timeout=TIMEOUT, allow_redirects=False
        ) as resp:
            return Answer(resp.status, resp.headers, await resp.read())
    except TimeoutError:
        return Result(Outcome.RETRY, "timeout")
    except aiohttp.ClientError:
        return Result(Outcome.RETRY, "connection_error")
