"""Discord's documented size limits, as named constants, and a check that lists what a message breaks."""

from __future__ import annotations

from typing import Any

from bridge.render.fit import measure

__all__ = [
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
    "violations",
]

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


def violations(body: Any) -> list[str]:
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
