"""`python -m stack demo`: the whole stack on this machine, without Docker."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from stack.demo import DEMO_ENV

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m stack",
        description="Run the llm-monitoring stack on 127.0.0.1 without Docker.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    env_help = "\n".join(f"  {k:<24} {v}" for k, v in DEMO_ENV.items())
    sub.add_parser(
        "demo",
        help="simulator (scenario demo) → sidecar → Prometheus → Alertmanager → bridge (console)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Starts the proxy simulator running its demo scenario, the sidecar, Prometheus and Alertmanager with\n"
            "the configs from deploy/ (addresses rewritten to 127.0.0.1, every duration scaled by DEMO_TIME_SCALE),\n"
            "and the alert bridge with its console channel, plus Slack/Discord/Teams/email/webhook when SLACK_*,\n"
            "DISCORD_*, TEAMS_*, SMTP_*/EMAIL_* or WEBHOOK_URL are set. Prints the URLs, a status line and every\n"
            "notification; Ctrl-C or SIGTERM stops everything."
        ),
        epilog=f"environment:\n{env_help}",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "demo":
        from stack.demo import main as demo_main

        return demo_main()
    return 2


if __name__ == "__main__":
    sys.exit(main())
