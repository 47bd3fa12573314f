"""One scrape of one upstream: Bearer auth, timeout, streamed size cap → bytes, or a typed failure reason."""

from __future__ import annotations

import ssl
import time
from dataclasses import dataclass

import aiohttp

from exporter.config import Config

__all__ = ["ACCEPT", "REASONS", "Scrape", "make_session", "reason_for_status", "scrape"]

ACCEPT = "text/plain;version=0.0.4"
# Every failure is one of these: the `reason` label of llm_exporter_upstream_scrape_errors_total.
REASONS = (
    "timeout",
    "connection",
    "tls",
    "http_401",
    "http_403",
    "http_4xx",
    "http_5xx",
    "http_other",
    "too_large",
    "invalid",
    "mapping",  # the answer was fine, but EXPORTER_MAPPING matched none of its series
)
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Scrape:
    """The outcome of one scrape: a body, or a reason; never an exception text that could hold a URL."""

    upstream: str
    body: bytes | None
    reason: str | None
    duration: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.body is not None


def reason_for_status(status: int) -> str:
    """An HTTP status (not 200) → a failure reason."""
    if status == 401:
        return "http_401"
    if status == 403:
        return "http_403"
    if 400 <= status < 500:
        return "http_4xx"
    if 500 <= status < 600:
        return "http_5xx"
    return "http_other"


def _ssl(config: Config) -> ssl.SSLContext | bool:
    if config.upstream_tls_insecure:
        return False
    if config.upstream_ca_file is not None:
        return ssl.create_default_context(cafile=str(config.upstream_ca_file))
    return True


def make_session(config: Config) -> aiohttp.ClientSession:
    """The app's one ClientSession: honours HTTPS_PROXY / NO_PROXY, verifies TLS as configured."""
    connector = aiohttp.TCPConnector(ssl=_ssl(config), limit=max(4, 2 * len(config.upstream_urls)))
    return aiohttp.ClientSession(connector=connector, trust_env=True)


def _headers(token: str | None) -> dict[str, str]:
    # identity: beside the proxy, bandwidth is cheap and the proxy's gzip (often level 9) is not.
    headers = {"Accept": ACCEPT, "Accept-Encoding": "identity", "User-Agent": "llm-exporter"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


async def scrape(
    session: aiohttp.ClientSession, url: str, upstream: str, *, token: str | None, timeout: float, max_body: int
) -> Scrape:
    """GET the upstream's metrics; the body only if complete, 200, text and within `max_body` bytes."""
    started = time.monotonic()

    def fail(reason: str, detail: str = "") -> Scrape:
        return Scrape(upstream, None, reason, time.monotonic() - started, detail)

    try:
        async with session.get(
            url, headers=_headers(token), timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
        ) as resp:  # a redirect could carry the token elsewhere
            if resp.status != 200:
                return fail(reason_for_status(resp.status), f"HTTP {resp.status}")
            if resp.content_type not in ("text/plain", "application/octet-stream"):
                return fail("invalid", f"content type {resp.content_type}")
            if resp.content_length is not None and resp.content_length > max_body:
                return fail("too_large", f"{resp.content_length} bytes announced")
            body = bytearray()
            async for chunk in resp.content.iter_chunked(_CHUNK):
                body += chunk
                if len(body) > max_body:  # stop reading: never hold more than the cap (gzip bombs included)
                    return fail("too_large", f"more than {max_body} bytes")
            return Scrape(upstream, bytes(body), None, time.monotonic() - started)
    except TimeoutError:  # asyncio.TimeoutError is this one since 3.11
        return fail("timeout", f"no complete answer within {timeout:g}s")
    except aiohttp.ClientSSLError as exc:
        return fail("tls", type(exc).__name__)
    except (aiohttp.ClientError, OSError) as exc:
        return fail("connection", type(exc).__name__)
