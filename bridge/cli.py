"""The `alert-bridge` command: serve (default), send-test, check-config, render."""

from __future__ import annotations

import argparse
import asyncio
import copy
import gc
import json
import logging
import sys
import time
from datetime import UTC, datetime
from email.message import Message as EmailMessage
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bridge.app import build_channels, channel_context, create_app
from bridge.channels import CHANNEL_TYPES, create_channel
from bridge.config import BridgeConfig, ConfigError, load_config
from bridge.dispatch import backoff_delay
from bridge.model import Channel, Notification, Outcome
from bridge.outbox import CorruptOutbox, OutboxError
from bridge.payload import PayloadError, parse_notification
from common import program_version
from common.logs import setup_logging

__all__ = ["main", "sample_payload"]

log = logging.getLogger("bridge.cli")

EXIT_CONFIG = 2  # configuration or input unusable (a corrupt outbox included)
EXIT_FAILED = 1  # ran, but something failed (a send, a size limit)


def sample_payload(status: str = "firing") -> dict[str, Any]:
    """The packaged Alertmanager 0.25 sample payload (`firing` or `resolved`)."""
    text = resources.files("bridge").joinpath(f"samples/alertmanager-0.25-{status}.json").read_text()
    return json.loads(text)


def _large_sample(alerts: int = 120, annotation: int = 2000) -> dict[str, Any]:
    """A group too big for any one message, so check-config exercises the splitting and "+N more" path."""
    body = sample_payload("firing")
    base = body["alerts"][0]
    body["alerts"] = []
    for i in range(alerts):
        alert = copy.deepcopy(base)
        severity = "critical" if i % 3 else "warning"
        alert["labels"] = {**base["labels"], "instance": f"host-{i}:9470", "severity": severity}
        alert["annotations"] = {"summary": f"alert {i} " + "s" * 80, "description": "d" * annotation}
        alert["fingerprint"] = f"{i:016x}"
        body["alerts"].append(alert)
    return body


def _send_test_payload() -> dict[str, Any]:
    body = sample_payload("firing")
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    alert = body["alerts"][0]
    alert["labels"] = {"alertname": "AlertBridgeSendTest", "severity": "warning", "job": "alert-bridge"}
    alert["annotations"] = {
        "summary": "Test notification from alert-bridge send-test",
        "description": "If you can read this, the channel is configured correctly. No action needed.",
    }
    alert["startsAt"] = now
    alert["fingerprint"] = f"{int(time.time()):016x}"
    body["commonLabels"] = dict(alert["labels"])
    body["commonAnnotations"] = dict(alert["annotations"])
    body["groupLabels"] = {"alertname": "AlertBridgeSendTest"}
    body["groupKey"] = '{}:{alertname="AlertBridgeSendTest"}'
    body["receiver"] = "send-test"
    return body


def _show(body: Any) -> str:
    if isinstance(body, EmailMessage):
        return body.as_string()
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    if isinstance(body, str):
        return body
    return json.dumps(body, indent=2, ensure_ascii=False)


# ---------------------------------------------------------------- serve


def _serve(config: BridgeConfig) -> int:
    app = create_app(config, handle_sighup=True)

    async def freeze(app: web.Application) -> None:
        # What exists once started lives as long as the process: keep it out of the garbage collector's full
        # passes, which otherwise walk every module and template on each one (5 % of intake under load).
        gc.freeze()

    app.on_startup.append(freeze)
    # SIGTERM/SIGINT: stop listening, finish requests, then the cleanup stops the dispatcher within the grace.
    web.run_app(
        app, host=config.host, port=config.port, shutdown_timeout=config.shutdown_grace, access_log=None, print=None
    )
    return 0


# ---------------------------------------------------------------- send-test


async def _send_test(config: BridgeConfig, only: str | None) -> int:
    if only is not None and only not in config.channels:
        print(f"send-test: no channel named {only!r}; configured: {', '.join(config.channels)}", file=sys.stderr)
        return EXIT_CONFIG
    notification = parse_notification(_send_test_payload())
    failed = 0
    async with aiohttp.ClientSession() as session:
        channels = build_channels(config, channel_context(config, session))
        try:
            for name, channel in channels.items():
                if only is not None and name != only:
                    continue
                ok, detail = await _send_all(channel, notification)
                failed += not ok
                print(f"{name} ({channel.describe()}): {detail}")
        finally:
            for channel in channels.values():
                await channel.close()
    return EXIT_FAILED if failed else 0


async def _send_all(channel: Channel, notification: Notification, tries: int = 4) -> tuple[bool, str]:
    """Send every part once, waiting out a 429 or a 5xx a few times; the serve loop does this durably."""
    messages = channel.render(notification)
    for i, message in enumerate(messages, 1):
        for attempt in range(1, tries + 1):
            result = await channel.send(message)
            if result.outcome is Outcome.DELIVERED:
                break
            if result.outcome is Outcome.PERMANENT or attempt == tries:
                return False, f"failed at message {i}/{len(messages)}: {result.reason or result.outcome.value}"
            await asyncio.sleep(min(30.0, result.retry_after or backoff_delay(attempt, 1.0, 10.0)))
    return True, f"delivered ({len(messages)} message{'s' if len(messages) != 1 else ''})"


# ---------------------------------------------------------------- check-config


def _check_config(config: BridgeConfig) -> int:
    print(
        f"listen {config.host}:{config.port}, data dir {config.data_dir}, "
        f"auth {'Bearer token' if config.token else 'OFF (BRIDGE_TOKEN not set)'}"
    )
    channels = build_channels(config, channel_context(config, None))
    for name, channel in channels.items():
        who = "every notification" if name in config.routing.broadcast else "routed"
        print(f"channel {name}: {channel.type} → {channel.describe()} ({who})")
    for i, route in enumerate(config.routing.routes):
        cond = [f"path={route.path}"] if route.path else []
        cond += [f"{k}={v}" for k, v in route.match.items()]
        cond += [f"{k}=~{p.pattern}" for k, p in route.match_re.items()]
        print(
            f"route {i}: {' '.join(cond) or 'any'} → {', '.join(route.channels)}"
            f"{' (continue)' if route.continue_ else ''}"
        )
    if config.routing.routes or config.routing.default_channels:
        print(f"default channels: {', '.join(config.routing.default_channels) or '(none)'}")
    samples = {"firing": sample_payload("firing"), "resolved": sample_payload("resolved"), "large": _large_sample()}
    problems = 0
    for name, channel in channels.items():
        for label, body in samples.items():
            try:
                messages = channel.render(parse_notification(body))
            except Exception as exc:  # a broken template override is exactly what this command is for
                problems += 1
                print(f"FAIL {name} {label}: render error: {type(exc).__name__}: {exc}")
                continue
            for m in messages:
                for v in channel.violations(m):
                    problems += 1
                    print(f"FAIL {name} {label} message {m.part}/{m.parts}: {v}")
            if not any(channel.violations(m) for m in messages):
                print(f"ok   {name} {label}: {len(messages)} message(s)")
    for channel in channels.values():
        # Channels built without a session own nothing yet; close() is for symmetry.
        asyncio.run(channel.close())
    print("configuration OK" if not problems else f"{problems} problem(s)")
    return EXIT_FAILED if problems else 0


# ---------------------------------------------------------------- render


def _render(config: BridgeConfig, name: str, payload: str) -> int:
    try:
        text = sys.stdin.read() if payload == "-" else Path(payload).read_text()
    except OSError as exc:
        print(f"render: cannot read {payload}: {exc.strerror}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        notification = parse_notification(json.loads(text))
    except json.JSONDecodeError as exc:
        print(f"render: {payload}: not valid JSON: {exc.msg} at line {exc.lineno}", file=sys.stderr)
        return EXIT_CONFIG
    except PayloadError as exc:
        print(f"render: {payload}: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    ctx = channel_context(config, None)
    if name in config.channels:
        channel = create_channel(name, config.channels[name], ctx)
    elif name in CHANNEL_TYPES:
        kind = CHANNEL_TYPES[name]
        settings = kind.settings.model_validate({"type": name, **kind.placeholder})
        channel = create_channel(name, settings, ctx)
    else:
        print(f"render: no channel or channel type named {name!r}", file=sys.stderr)
        return EXIT_CONFIG
    messages = channel.render(notification)
    for m in messages:
        if len(messages) > 1:
            print(f"--- message {m.part}/{m.parts}{' (truncated)' if m.truncated else ''} ---", file=sys.stderr)
        out = _show(m.body)
        sys.stdout.write(out if out.endswith("\n") else out + "\n")
    return 0


# ---------------------------------------------------------------- entry point


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="alert-bridge",
        description="Alertmanager webhooks to Slack, Discord, email and webhooks. Configured by environment "
        "variables (BRIDGE_*, SLACK_WEBHOOK_URL, ...) and the optional BRIDGE_CONFIG YAML.",
    )
    p.add_argument("--version", action="version", version=program_version("alert-bridge"))
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="run the bridge (the default)")
    st = sub.add_parser("send-test", help="send a sample notification through the configured channels")
    st.add_argument("--channel", help="only this channel")
    sub.add_parser("check-config", help="validate the configuration and render templates against samples")
    r = sub.add_parser("render", help="print what would be sent for a payload")
    r.add_argument("--channel", required=True, help="a configured channel name or a channel type")
    r.add_argument("payload", help="Alertmanager webhook JSON file, or - for stdin")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run `alert-bridge`; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        config = load_config(None, CHANNEL_TYPES)
    except ConfigError as exc:
        print(f"alert-bridge: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    setup_logging(config.log_level, config.secrets())
    try:
        if args.command in (None, "serve"):
            return _serve(config)
        if args.command == "send-test":
            return asyncio.run(_send_test(config, args.channel))
        if args.command == "check-config":
            return _check_config(config)
        return _render(config, args.channel, args.payload)
    except ConfigError as exc:
        print(f"alert-bridge: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except CorruptOutbox as exc:
        log.error("cannot start: outbox corrupt", extra={"path": str(exc.path), "moved_to": str(exc.moved_to)})
        print(f"alert-bridge: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (OutboxError, OSError) as exc:
        # The data directory (BRIDGE_DATA_DIR) cannot hold the outbox: missing rights, read-only, full.
        print(f"alert-bridge: cannot open the outbox in BRIDGE_DATA_DIR ({config.data_dir}): {exc}", file=sys.stderr)
        return EXIT_CONFIG
