"""Slack's documented size limits, as named constants, and a check that lists what a message breaks."""

from __future__ import annotations

from typing import Any

from bridge.render.fit import measure

__all__ = [
    "SLACK_MAX_BLOCKS",
    "SLACK_MAX_BLOCKS_CHARS",
    "SLACK_MAX_CONTEXT_ELEMENTS",
    "SLACK_MAX_FIELDS",
    "SLACK_MAX_FIELD_TEXT",
    "SLACK_MAX_HEADER",
    "SLACK_MAX_SECTION_TEXT",
    "SLACK_MAX_TEXT",
    "violations",
]

# Slack Block Kit reference (api.slack.com/reference/block-kit/blocks): 50 blocks per message; section text
# 3,000 characters; up to 10 section fields of 2,000; header text 150; context up to 10 elements.
SLACK_MAX_BLOCKS = 50
SLACK_MAX_SECTION_TEXT = 3000
SLACK_MAX_FIELDS = 10
SLACK_MAX_FIELD_TEXT = 2000
SLACK_MAX_HEADER = 150
SLACK_MAX_CONTEXT_ELEMENTS = 10
# Slack changelog: top-level `text` is truncated above 40,000 characters.
SLACK_MAX_TEXT = 40000
# Not documented: blocks totalling around 13k characters fail with msg_blocks_too_long (slackapi/bolt-js#2509).
# Stay well under it.
SLACK_MAX_BLOCKS_CHARS = 12000


def _text(obj: Any) -> str:
    if isinstance(obj, dict):
        value = obj.get("text", "")
        return value if isinstance(value, str) else ""
    return ""


def _slack_blocks(blocks: list, where: str, problems: list[str]) -> int:
    total = 0
    if len(blocks) > SLACK_MAX_BLOCKS:
        problems.append(f"{where}: {len(blocks)} blocks > {SLACK_MAX_BLOCKS}")
    for i, block in enumerate(blocks):
        kind = block.get("type")
        text = _text(block.get("text"))
        total += measure(text)
        if kind == "header" and measure(text) > SLACK_MAX_HEADER:
            problems.append(f"{where}[{i}] header text {measure(text)} > {SLACK_MAX_HEADER}")
        if kind == "section":
            if measure(text) > SLACK_MAX_SECTION_TEXT:
                problems.append(f"{where}[{i}] section text {measure(text)} > {SLACK_MAX_SECTION_TEXT}")
            fields = block.get("fields") or []
            if len(fields) > SLACK_MAX_FIELDS:
                problems.append(f"{where}[{i}] {len(fields)} fields > {SLACK_MAX_FIELDS}")
            for f in fields:
                total += measure(_text(f))
                if measure(_text(f)) > SLACK_MAX_FIELD_TEXT:
                    problems.append(f"{where}[{i}] field text {measure(_text(f))} > {SLACK_MAX_FIELD_TEXT}")
            if not text and not fields:
                problems.append(f"{where}[{i}] section has neither text nor fields")
        if kind == "context":
            elements = block.get("elements") or []
            if len(elements) > SLACK_MAX_CONTEXT_ELEMENTS:
                problems.append(f"{where}[{i}] {len(elements)} context elements > {SLACK_MAX_CONTEXT_ELEMENTS}")
            for e in elements:
                total += measure(_text(e))
                if measure(_text(e)) > SLACK_MAX_SECTION_TEXT:
                    problems.append(f"{where}[{i}] context text {measure(_text(e))} > {SLACK_MAX_SECTION_TEXT}")
    return total


def violations(body: Any) -> list[str]:
    """What Slack would reject (or silently cut) in an incoming-webhook body."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    text = body.get("text", "")
    if not isinstance(text, str) or not text:
        problems.append("missing fallback text")
    elif measure(text) > SLACK_MAX_TEXT:
        problems.append(f"text {measure(text)} > {SLACK_MAX_TEXT}")
    total = _slack_blocks(body.get("blocks") or [], "blocks", problems)
    for j, attachment in enumerate(body.get("attachments") or []):
        total += _slack_blocks(attachment.get("blocks") or [], f"attachments[{j}].blocks", problems)
    if total > SLACK_MAX_BLOCKS_CHARS:
        problems.append(f"blocks hold {total} characters > {SLACK_MAX_BLOCKS_CHARS}")
    return problems
