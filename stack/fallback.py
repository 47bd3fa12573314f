"""The local stack's fallback receiver: Alertmanager's webhooks for the alert path's own alerts, around the bridge."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FallbackNotification", "FallbackReceiver"]


@dataclass(frozen=True)
class FallbackNotification:
    """One webhook from Alertmanager: its status and the alert names it carries."""

    status: str
    alertnames: tuple[str, ...]


class FallbackReceiver:
    """An HTTP server on 127.0.0.1 (a free port) recording every Alertmanager webhook it is sent."""

    def __init__(self, on_notification: Callable[[FallbackNotification], None] | None = None) -> None:
        self.received: list[FallbackNotification] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    payload = json.loads(body)
                    note = FallbackNotification(
                        str(payload.get("status", "?")),
                        tuple(sorted({a.get("labels", {}).get("alertname", "?") for a in payload.get("alerts", [])})),
                    )
                except (ValueError, AttributeError):
                    self.send_response(400)
                    self.end_headers()
                    return
                with receiver._lock:
                    receiver.received.append(note)
                if on_notification is not None:
                    on_notification(note)
                self.send_response(200)
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:  # quiet: the demo prints what matters
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="fallback-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/fallback"

    def notifications(self) -> list[FallbackNotification]:
        with self._lock:
            return list(self.received)

    def __enter__(self) -> FallbackReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
