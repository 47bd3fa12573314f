"""Bodies stored within the dedupe window, recognised by their bytes before anything decodes them.

Alertmanager sends a notification again, byte for byte, when its request failed or timed out, and so do its
HA peers when they notify the same group: the outbox recognises such a repeat by its dedupe key, but only
after the body is decoded and validated, which is most of what intake costs. This answers those repeats
first. It holds only bodies the outbox stored, with a time no later than the outbox's own, so it never calls
"duplicate" what the outbox would store; it lives in memory (after a restart the outbox's check still
applies) and forgets the oldest beyond its size.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

__all__ = ["RecentBodies"]


class RecentBodies:
    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._seen: OrderedDict[bytes, tuple[float, str]] = OrderedDict()  # key -> (stored at, group key)

    @staticmethod
    def key(route: str, body: bytes) -> bytes:
        """The route and the exact bytes: the same body on another route is another notification.

        SHA-256, not BLAKE2: OpenSSL computes it with the CPU's SHA extensions where there are any, twice as
        fast as BLAKE2 here (5 against 12 µs for a 20-alert body), and every body is hashed."""
        digest = hashlib.sha256(route.encode())
        digest.update(b"\0")
        digest.update(body)
        return digest.digest()

    def group_of(self, key: bytes, now: float, window: float) -> str | None:
        """The group key of a body stored less than `window` seconds ago, or None."""
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= window:
            return None
        return seen[1]

    def stored(self, key: bytes, at: float, group_key: str) -> None:
        """The outbox stored this body; `at` no later than the time it recorded."""
        self._seen[key] = (at, group_key)
        self._seen.move_to_end(key)
        while len(self._seen) > self._size:
            self._seen.popitem(last=False)
