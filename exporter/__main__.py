"""Start the sidecar: read the configuration, set up JSON logs, serve."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from aiohttp import web

from common.logs import setup_logging
from exporter.app import create_app
from exporter.config import ConfigError, load_config
from exporter.mapcli import COMMANDS, run

__all__ = ["main"]

log = logging.getLogger("exporter")


def main(argv: Sequence[str] | None = None) -> None:
    """Console script `llm-exporter`; exits 2 with a message naming the variable on bad configuration."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in COMMANDS:  # the mapping commands: no service started
        raise SystemExit(run(args))
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"llm-exporter: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    setup_logging(config.log_level, config.secrets())
    if config.token is None:
        log.warning("EXPORTER_TOKEN is not set: /metrics is open to anyone who can reach it")
    if config.upstream_tls_insecure:
        log.warning("LLM_PROXY_TLS_INSECURE is set: the upstream's TLS certificate is NOT verified")
    log.info(
        "starting",
        extra={
            "listen": f"{config.listen_host}:{config.listen_port}",
            "upstreams": list(config.upstream_labels),
            "poll_interval": config.poll_interval,
            "windows": [w.label for w in config.windows],
        },
    )
    web.run_app(
        create_app(config),
        host=config.listen_host,
        port=config.listen_port,
        access_log=None,
        print=None,
        shutdown_timeout=5,
    )


if __name__ == "__main__":
    main()
