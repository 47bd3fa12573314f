"""Start llm-proxy-sim: read flags and environment, log as JSON lines, serve the app."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from common.logs import setup_logging
from exporter.simulator.app import EXPOSITION_KEY, create_app
from exporter.simulator.config import ConfigError, load_settings

__all__ = ["main"]

log = logging.getLogger("llm_proxy_sim")


class _AccessLogger(AbstractAccessLogger):
    """Method, path (never the query or headers, which may carry credentials), status and duration."""

    def log(self, request, response, time: float) -> None:
        self.logger.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status,
                "bytes": response.body_length,
                "duration_s": round(time, 4),
            },
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `llm-proxy-sim` console script."""
    try:
        settings = load_settings(argv)
    except ConfigError as exc:
        print(f"llm-proxy-sim: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(secrets=[settings.token] if settings.token else ())
    app = create_app(settings)
    log.info(
        "starting",
        extra={
            "listen": f"{settings.host}:{settings.port}",
            "scenario": settings.scenario,
            "speed": settings.speed,
            "format": settings.format,
            "padding_series": app[EXPOSITION_KEY].padding_series,
            "auth": settings.token is not None,
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
            extra={"listen": f"{settings.host}:{settings.port}", "error": str(exc), "hint": "set SIM_LISTEN"},
        )
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
