"""Start llm-proxy-sim: read flags and environment, log as JSON lines, serve the app."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Sequence

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from exporter.simulator.app import create_app
from exporter.simulator.config import ConfigError, load_settings

__all__ = ["main"]

log = logging.getLogger("llm_proxy_sim")


class _JsonFormatter(logging.Formatter):
    """One JSON object per line; structured fields come from `extra={"fields": {...}}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _AccessLogger(AbstractAccessLogger):
    """Method, path (never the query or headers, which may carry credentials), status and duration."""

    def log(self, request, response, time: float) -> None:
        self.logger.info(
            "request",
            extra={
                "fields": {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status,
                    "bytes": response.body_length,
                    "duration_s": round(time, 4),
                }
            },
        )


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `llm-proxy-sim` console script."""
    _setup_logging()
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        print(f"llm-proxy-sim: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    app = create_app(settings)
    log.info(
        "starting",
        extra={
            "fields": {
                "listen": f"{settings.host}:{settings.port}",
                "scenario": settings.scenario,
                "speed": settings.speed,
                "padding_series": settings.series // 11 * 11,
                "auth": settings.token is not None,
            }
        },
    )
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            access_log_class=_AccessLogger,
            access_log=logging.getLogger("llm_proxy_sim.access"),
            print=None,
            handle_signals=True,
        )
    except OSError as exc:
        # Typically the port is taken: say which setting to change.
        log.error(
            "cannot listen",
            extra={
                "fields": {"listen": f"{settings.host}:{settings.port}", "error": str(exc), "hint": "set SIM_LISTEN"}
            },
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
