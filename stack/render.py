"""Render operator settings into deploy/'s Prometheus rules and Alertmanager config (runbook base, fallback, watchdog).

Prometheus reads no environment in rules and Alertmanager expands none in its configuration, so the
settings of `deploy/.env` that they need are written into copies of their directories: `scripts/setup.sh`
runs `python3 -m stack.render` (standard library only: it runs on the Docker host, outside the project's
virtualenv) and Compose mounts the result; the local stack calls the same functions.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_RUNBOOK_BASE",
    "FALLBACK_PASSWORD_FILE",
    "Fallback",
    "RenderError",
    "copy_tree",
    "fallback_from_env",
    "main",
    "render_deploy",
    "render_receivers",
    "render_runbook_base",
    "runbook_base_from_env",
]

# What the rules in git carry: the bridge's runbook page at its default public address.
DEFAULT_RUNBOOK_BASE = "http://localhost:9095/runbooks"
# Relative to the Alertmanager config's directory, like secrets/bridge_token (Compose mounts secrets/ there).
FALLBACK_PASSWORD_FILE = "secrets/fallback_smtp_password"
_FALLBACK_LINE = "  - name: fallback\n"
_WATCHDOG_LINE = "  - name: watchdog\n"


class RenderError(ValueError):
    """A setting cannot be rendered; the message names the variable, never a secret value."""


@dataclass(frozen=True)
class Fallback:
    """Alertmanager's own receivers for alerts about the alert path: an email and/or a webhook."""

    webhook_url: str = ""
    email_to: str = ""
    email_from: str = ""
    smarthost: str = ""
    username: str = ""
    password_file: bool = False  # whether FALLBACK_PASSWORD_FILE holds the SMTP password
    require_tls: bool = True

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url or self.email_to)


def _url(value: str, name: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Not echoed: such URLs often carry a token.
        raise RenderError(f"{name}: must be an http:// or https:// URL with a host")
    return value


def _get(env: Mapping[str, str], name: str) -> str:
    return (env.get(name) or "").strip()


def runbook_base_from_env(env: Mapping[str, str]) -> str:
    """RUNBOOK_BASE_URL, else BRIDGE_PUBLIC_URL + /runbooks, else the default; without a trailing slash."""
    if _get(env, "RUNBOOK_BASE_URL"):
        return _url(_get(env, "RUNBOOK_BASE_URL"), "RUNBOOK_BASE_URL").rstrip("/")
    if _get(env, "BRIDGE_PUBLIC_URL"):
        return _url(_get(env, "BRIDGE_PUBLIC_URL"), "BRIDGE_PUBLIC_URL").rstrip("/") + "/runbooks"
    return DEFAULT_RUNBOOK_BASE


def fallback_from_env(env: Mapping[str, str], password_file: bool = False) -> Fallback:
    """The fallback receiver from FALLBACK_* variables; `password_file`: the SMTP password file was written."""
    webhook = _get(env, "FALLBACK_WEBHOOK_URL")
    to = _get(env, "FALLBACK_EMAIL_TO")
    sender, host = _get(env, "FALLBACK_EMAIL_FROM"), _get(env, "FALLBACK_SMTP_SMARTHOST")
    tls = _get(env, "FALLBACK_SMTP_REQUIRE_TLS").lower() or "true"
    if tls not in ("true", "false"):
        raise RenderError(f"FALLBACK_SMTP_REQUIRE_TLS: must be true or false, not {tls!r}")
    if to:
        if not sender:
            raise RenderError("FALLBACK_EMAIL_FROM: required with FALLBACK_EMAIL_TO")
        name, sep, port = host.rpartition(":")
        if not (sep and name and port.isdigit()):
            raise RenderError(f"FALLBACK_SMTP_SMARTHOST: required with FALLBACK_EMAIL_TO, as host:port, not {host!r}")
    elif host or sender:
        raise RenderError("FALLBACK_EMAIL_TO: FALLBACK_SMTP_SMARTHOST / FALLBACK_EMAIL_FROM are set without it")
    return Fallback(
        webhook_url=_url(webhook, "FALLBACK_WEBHOOK_URL") if webhook else "",
        email_to=to,
        email_from=sender,
        smarthost=host,
        username=_get(env, "FALLBACK_SMTP_USERNAME"),
        password_file=password_file and bool(to),
        require_tls=tls == "true",
    )


def render_runbook_base(text: str, base: str) -> str:
    """Rules text with the default runbook base replaced by `base`."""
    return text.replace(DEFAULT_RUNBOOK_BASE, base.rstrip("/"))


def _q(value: str) -> str:
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def _insert_after(text: str, line: str, block: list[str]) -> str:
    if not block:
        return text
    if text.count(line) != 1:
        raise RenderError(f"the Alertmanager config must hold the line {line.strip()!r} exactly once")
    return text.replace(line, line + "".join(f"{b}\n" for b in block))


def render_receivers(text: str, fallback: Fallback, watchdog_url: str = "") -> str:
    """Alertmanager config text with the `fallback` and `watchdog` receivers filled in (empty ones stay empty)."""
    block: list[str] = []
    if fallback.email_to:
        block += [
            "    email_configs:",
            f"      - to: {_q(fallback.email_to)}",
            f"        from: {_q(fallback.email_from)}",
            f"        smarthost: {_q(fallback.smarthost)}",
            f"        require_tls: {str(fallback.require_tls).lower()}",
            "        send_resolved: true",
        ]
        if fallback.username:
            block.append(f"        auth_username: {_q(fallback.username)}")
        if fallback.password_file:
            block.append(f"        auth_password_file: {FALLBACK_PASSWORD_FILE}")
    if fallback.webhook_url:
        # Alertmanager 0.25 has no url_file for webhooks: the URL is in the rendered file (mode 640).
        block += ["    webhook_configs:", f"      - url: {_q(fallback.webhook_url)}", "        send_resolved: true"]
    text = _insert_after(text, _FALLBACK_LINE, block)
    watchdog = []
    if watchdog_url:
        url = _q(_url(watchdog_url, "WATCHDOG_URL"))
        # A ping per repeat; "resolved" never happens to an always-firing alert.
        watchdog = [
            "    webhook_configs:",
            f"      - url: {url}",
            "        send_resolved: false",
            "        max_alerts: 1",
        ]
    return _insert_after(text, _WATCHDOG_LINE, watchdog)


def copy_tree(src: Path, dest: Path, render: Callable[[Path, str], str]) -> None:
    """`src` copied to a fresh `dest` (its tests/ and secrets/ left out), YAML files passed through `render`."""
    if dest.exists():
        shutil.rmtree(dest)
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if path.is_dir() or rel.parts[0] in ("tests", "secrets"):
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix in (".yml", ".yaml"):
            out.write_text(render(rel, path.read_text()))
        else:
            shutil.copyfile(path, out)


def render_deploy(deploy_dir: Path, out_dir: Path, env: Mapping[str, str], password_file: bool = False) -> Fallback:
    """deploy/prometheus and deploy/alertmanager rendered into out_dir/{prometheus,alertmanager}."""
    base = runbook_base_from_env(env)
    fallback = fallback_from_env(env, password_file)
    watchdog = _get(env, "WATCHDOG_URL")
    copy_tree(deploy_dir / "prometheus", out_dir / "prometheus", lambda rel, text: render_runbook_base(text, base))
    copy_tree(
        deploy_dir / "alertmanager",
        out_dir / "alertmanager",
        lambda rel, text: render_receivers(text, fallback, watchdog) if rel == Path("alertmanager.yml") else text,
    )
    return fallback


def main(argv: list[str] | None = None) -> int:
    """`python3 -m stack.render --deploy-dir DIR --out DIR`: settings from the environment; exit 2 on a bad one."""
    parser = argparse.ArgumentParser(prog="python3 -m stack.render", description=__doc__.splitlines()[0])
    parser.add_argument("--deploy-dir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--password-file", action="store_true", help=f"{FALLBACK_PASSWORD_FILE} holds a password")
    args = parser.parse_args(argv)
    try:
        fallback = render_deploy(args.deploy_dir, args.out, os.environ, args.password_file)
    except RenderError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    kinds = [k for k, on in (("email", fallback.email_to), ("webhook", fallback.webhook_url)) if on]
    print(f"fallback={','.join(kinds) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
