"""JSON log lines on stderr, one timestamp form, with every known secret redacted."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

__all__ = ["REDACTED", "JsonFormatter", "RedactFilter", "add_secrets", "setup_logging"]

REDACTED = "***"

# Attributes every LogRecord has; anything else came from `extra=` and becomes a field of the line.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime", "taskName"}
# The path of a webhook URL is its secret (Slack, Discord); shorter paths like `/hook` carry none and
# redacting them would garble ordinary text.
_MIN_SECRET_PATH = 8


def _variants(secret: str) -> set[str]:
    """The secret, and for a URL also its path (and query), which is what the secret part of a webhook is."""
    out = {secret}
    if secret.startswith(("http://", "https://")):
        try:
            parts = urlsplit(secret)
        except ValueError:
            return out
        tail = parts.path + (f"?{parts.query}" if parts.query else "")
        for candidate in (parts.path, tail):
            if len(candidate) >= _MIN_SECRET_PATH:
                out.add(candidate)
    return out


class RedactFilter(logging.Filter):
    """Replaces every secret in the message, in every `extra` string and in the exception text of a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._patterns: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Register more secrets, e.g. webhook URLs learned from a configuration file after start."""
        found = set(self._secrets)
        for secret in secrets:
            if secret and secret.strip():
                found |= _variants(secret.strip())
        # Also each one as it looks inside a JSON string (quotes, backslashes escaped), for the final pass.
        escaped = {json.dumps(s, ensure_ascii=False)[1:-1] for s in found} - found
        with self._lock:
            self._secrets = tuple(sorted(found, key=len, reverse=True))
            # Longest first, so that a URL is replaced whole before its path is looked for.
            self._patterns = tuple(sorted(found | escaped, key=len, reverse=True))

    def redact(self, text: str) -> str:
        """`text` with every registered secret (and its JSON-escaped form) replaced by ***."""
        for secret in self._patterns:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text

    def _value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, (list, tuple)):  # a plain list either way: JSON has nothing else (namedtuples too)
            return [self._value(v) for v in value]
        if isinstance(value, dict):
            return {k: self._value(v) for k, v in value.items()}
        return value

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        record.msg, record.args = self.redact(record.getMessage()), None
        for key, value in list(record.__dict__.items()):
            if key not in _STANDARD:
                record.__dict__[key] = self._value(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (RFC 3339 UTC, milliseconds, Z), level, logger, msg, `extra` fields, exc.

    With a RedactFilter, the finished line is redacted once more: the last guard for values that only become
    text here (an exception object passed in `extra`, say).
    """

    def __init__(self, redact: RedactFilter | None = None) -> None:
        super().__init__()
        self._redact = redact

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        exc = record.exc_text or (self.formatException(record.exc_info) if record.exc_info else None)
        if exc:
            entry["exc"] = exc
        if record.stack_info:
            entry["stack"] = record.stack_info
        line = json.dumps(entry, default=str, ensure_ascii=False)
        return self._redact.redact(line) if self._redact is not None else line


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> logging.Handler:
    """JSON lines on stderr for the root logger (stdout stays free for output such as the bridge's console
    channel), secrets redacted; returns the handler, for add_secrets and for tests to remove."""
    redact = RedactFilter(secrets)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redact))
    handler.addFilter(redact)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what the programs' own request logs say, with less.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return handler


def add_secrets(handler: logging.Handler | None, secrets: Iterable[str]) -> None:
    """Register secrets learned after setup (a webhook URL registers its path too); `None`: the root's handlers."""
    secrets = tuple(secrets)
    handlers = [handler] if handler is not None else logging.getLogger().handlers
    for h in handlers:
        for f in h.filters:
            if isinstance(f, RedactFilter):
                f.add(secrets)
