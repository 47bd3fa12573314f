"""Each platform's documented size limits, as named constants, and checks that list what a message breaks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "CHECKS",
    "DISCORD_MAX_AUTHOR",
    "DISCORD_MAX_CONTENT",
    "DISCORD_MAX_DESCRIPTION",
    "DISCORD_MAX_EMBEDS",
    "DISCORD_MAX_FIELDS",
    "DISCORD_MAX_FIELD_NAME",
    "DISCORD_MAX_FIELD_VALUE",
    "DISCORD_MAX_FOOTER",
    "DISCORD_MAX_TITLE",
    "DISCORD_MAX_TOTAL",
    "DISCORD_MAX_USERNAME",
    "EMAIL_MAX_HTML_BYTES",
    "EMAIL_MAX_SUBJECT",
    "SLACK_MAX_BLOCKS",
    "SLACK_MAX_BLOCKS_CHARS",
    "SLACK_MAX_CONTEXT_ELEMENTS",
    "SLACK_MAX_FIELDS",
    "SLACK_MAX_FIELD_TEXT",
    "SLACK_MAX_HEADER",
    "SLACK_MAX_SECTION_TEXT",
    "SLACK_MAX_TEXT",
    "discord_violations",
    "email_violations",
    "measure",
    "slack_violations",
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

# Discord API docs, webhook resource and embed limits (discord.com/developers/docs/resources/message#embed-limits).
DISCORD_MAX_CONTENT = 2000
DISCORD_MAX_EMBEDS = 10
DISCORD_MAX_TITLE = 256
DISCORD_MAX_DESCRIPTION = 4096
DISCORD_MAX_FIELDS = 25
DISCORD_MAX_FIELD_NAME = 256
DISCORD_MAX_FIELD_VALUE = 1024
DISCORD_MAX_FOOTER = 2048
DISCORD_MAX_AUTHOR = 256
DISCORD_MAX_TOTAL = 6000  # title + description + field names and values + footer + author, all embeds together
DISCORD_MAX_USERNAME = 80

# Gmail clips an HTML body above about 102 KB (the rest hidden behind "View entire message"); RFC 5322
# recommends header lines under 78 characters, folded by the email package, so the subject cap is generous.
EMAIL_MAX_HTML_BYTES = 100_000
EMAIL_MAX_SUBJECT = 250


def measure(text: str) -> int:
    """Length as the platforms count it, conservatively: UTF-16 code units (an emoji counts 2)."""
    return len(text.encode("utf-16-le")) // 2


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


def slack_violations(body: Any) -> list[str]:
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


def discord_violations(body: Any) -> list[str]:
    """What Discord would answer 400 to in an execute-webhook body."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    content = body.get("content") or ""
    embeds = body.get("embeds") or []
    if measure(content) > DISCORD_MAX_CONTENT:
        problems.append(f"content {measure(content)} > {DISCORD_MAX_CONTENT}")
    if not content and not embeds:
        problems.append("neither content nor embeds")
    if len(embeds) > DISCORD_MAX_EMBEDS:
        problems.append(f"{len(embeds)} embeds > {DISCORD_MAX_EMBEDS}")
    if measure(body.get("username") or "") > DISCORD_MAX_USERNAME:
        problems.append(f"username > {DISCORD_MAX_USERNAME}")
    total = 0

    def check(value: str, limit: int, where: str) -> None:
        nonlocal total
        total += measure(value)
        if measure(value) > limit:
            problems.append(f"{where} {measure(value)} > {limit}")

    for i, embed in enumerate(embeds):
        check(embed.get("title") or "", DISCORD_MAX_TITLE, f"embeds[{i}].title")
        check(embed.get("description") or "", DISCORD_MAX_DESCRIPTION, f"embeds[{i}].description")
        check((embed.get("footer") or {}).get("text") or "", DISCORD_MAX_FOOTER, f"embeds[{i}].footer")
        check((embed.get("author") or {}).get("name") or "", DISCORD_MAX_AUTHOR, f"embeds[{i}].author")
        fields = embed.get("fields") or []
        if len(fields) > DISCORD_MAX_FIELDS:
            problems.append(f"embeds[{i}]: {len(fields)} fields > {DISCORD_MAX_FIELDS}")
        for k, f in enumerate(fields):
            name, value = f.get("name") or "", f.get("value") or ""
            if not name or not value:
                problems.append(f"embeds[{i}].fields[{k}] has an empty name or value")
            check(name, DISCORD_MAX_FIELD_NAME, f"embeds[{i}].fields[{k}].name")
            check(value, DISCORD_MAX_FIELD_VALUE, f"embeds[{i}].fields[{k}].value")
    if total > DISCORD_MAX_TOTAL:
        problems.append(f"embeds hold {total} characters > {DISCORD_MAX_TOTAL}")
    return problems


def email_violations(body: Any) -> list[str]:
    """What would break or clip an email: CR/LF in the subject, a missing part, an HTML part Gmail clips."""
    if not isinstance(body, dict):
        return ["body is not an email description"]
    problems: list[str] = []
    subject = body.get("subject") or ""
    if any(c in subject for c in "\r\n"):
        problems.append("subject holds CR or LF")
    if measure(subject) > EMAIL_MAX_SUBJECT:
        problems.append(f"subject {measure(subject)} > {EMAIL_MAX_SUBJECT}")
    if not body.get("text") or not body.get("html"):
        problems.append("needs both a text and an HTML part")
    html_bytes = len((body.get("html") or "").encode())
    if html_bytes > EMAIL_MAX_HTML_BYTES:
        problems.append(f"HTML part {html_bytes} bytes > {EMAIL_MAX_HTML_BYTES}")
    return problems


CHECKS: dict[str, Callable[[Any], list[str]]] = {
    "slack": slack_violations,
    "discord": discord_violations,
    "email": email_violations,
}
