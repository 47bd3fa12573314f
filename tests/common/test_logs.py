"""JSON logs: one timestamp form, extra fields, and secrets redacted from message, extras and exceptions."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest

from common.logs import REDACTED, JsonFormatter, RedactFilter, add_secrets, setup_logging

TOKEN = "tok-3f9a1c77e0"
HOOK = "https://hooks.slack.com/services/T000/B000/XXXXSECRETPATH"


@pytest.fixture
def capture():
    """setup_logging as the programs call it, with its stream swapped for a buffer; restores the root after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    buffers: list[io.StringIO] = []

    def setup(level: str = "INFO", secrets=()) -> tuple[logging.Handler, io.StringIO]:
        handler = setup_logging(level, secrets)
        assert isinstance(handler, logging.StreamHandler)
        buf = io.StringIO()
        handler.setStream(buf)
        buffers.append(buf)
        return handler, buf

    yield setup
    root.handlers[:], level = saved
    root.setLevel(level)


def _lines(buf: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buf.getvalue().splitlines()]


def test_setup_logging_writes_json_to_stderr_and_quiets_aiohttp_access():
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        import sys

        handler = setup_logging("debug")
        assert isinstance(handler, logging.StreamHandler) and handler.stream is sys.stderr
        assert root.handlers == [handler] and root.level == logging.DEBUG
        assert logging.getLogger("aiohttp.access").level == logging.WARNING
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def test_line_shape_and_timestamp(capture):
    _, buf = capture()
    logging.getLogger("some.module").warning("héllo %s", "wörld", extra={"channel": "slack", "attempts": 3})
    (line,) = _lines(buf)
    assert line["msg"] == "héllo wörld" and line["level"] == "warning" and line["logger"] == "some.module"
    assert line["channel"] == "slack" and line["attempts"] == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"]), line["ts"]
    assert "héllo" in buf.getvalue()  # ensure_ascii=False: readable, not \u00e9


def test_token_redacted_from_message_extra_and_exception(capture):
    _, buf = capture("INFO", [TOKEN])
    log = logging.getLogger("t")
    log.info("token is %s", TOKEN)
    log.info("plain", extra={"header": f"Bearer {TOKEN}", "nested": {"list": [TOKEN, 1]}, "obj": ValueError(TOKEN)})
    try:
        raise RuntimeError(f"upstream said {TOKEN}")
    except RuntimeError:
        log.exception("failed")
    text = buf.getvalue()
    assert TOKEN not in text
    first, second, third = _lines(buf)
    assert first["msg"] == f"token is {REDACTED}"
    assert second["header"] == f"Bearer {REDACTED}" and second["nested"] == {"list": [REDACTED, 1]}
    assert second["obj"] == REDACTED
    assert "RuntimeError: upstream said ***" in third["exc"] and "Traceback" in third["exc"]


def test_secret_with_json_special_characters(capture):
    secret = 'pa"ss\\wörd'
    _, buf = capture("INFO", [secret])
    logging.getLogger("t").info("x", extra={"obj": RuntimeError(secret)})
    text = buf.getvalue()
    assert secret not in text and json.dumps(secret, ensure_ascii=False)[1:-1] not in text
    assert _lines(buf)[0]["obj"] == REDACTED


def test_secrets_added_after_setup_cover_url_and_path(capture):
    handler, buf = capture()
    log = logging.getLogger("t")
    log.info("before", extra={"url": HOOK})
    add_secrets(None, [HOOK])
    log.info("full %s", HOOK)
    log.info("path only", extra={"path": "/services/T000/B000/XXXXSECRETPATH"})
    before, full, path = _lines(buf)
    assert before["url"] == HOOK  # nothing was registered yet: shows the test can fail
    assert full["msg"] == "full ***" and path["path"] == REDACTED
    add_secrets(handler, ["another-secret-value"])
    log.info("another-secret-value")
    assert _lines(buf)[-1]["msg"] == REDACTED


def test_short_url_paths_are_not_redacted_alone():
    redact = RedactFilter(["https://audit.example.com/hook"])
    assert redact.redact("POST /hook failed for https://audit.example.com/hook") == "POST /hook failed for ***"


def test_formatter_without_filter_still_formats():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m %d", (1,), None)
    assert json.loads(JsonFormatter().format(record))["msg"] == "m 1"


def test_bridge_logs_redact_its_token_and_webhook_urls(capture, tmp_path):
    from bridge.channels import CHANNEL_TYPES
    from bridge.config import load_config

    (tmp_path / "bridge.yml").write_text(
        "channels:\n"
        "  audit: {type: webhook, url: 'https://audit.example.com/hooks/AUDITSECRET', headers: {X-Key: hdr-secret}}\n"
    )
    env = {
        "BRIDGE_TOKEN": TOKEN,
        "SLACK_WEBHOOK_URL": HOOK,
        "DISCORD_WEBHOOK_URL": "https://discord.com/api/webhooks/1/DISCORDSECRET",
        "BRIDGE_CONFIG": str(tmp_path / "bridge.yml"),
    }
    config = load_config(env, CHANNEL_TYPES)
    _, buf = capture(config.log_level, config.secrets())  # what bridge.cli does at start
    log = logging.getLogger("bridge.dispatch")
    log.warning("post to %s failed", HOOK, extra={"auth": f"Bearer {TOKEN}"})
    log.warning("path", extra={"path": "/api/webhooks/1/DISCORDSECRET", "h": "hdr-secret"})
    log.warning("audit https://audit.example.com/hooks/AUDITSECRET")
    text = buf.getvalue()
    for secret in (TOKEN, "XXXXSECRETPATH", "DISCORDSECRET", "AUDITSECRET", "hdr-secret"):
        assert secret not in text
    assert len(_lines(buf)) == 3
