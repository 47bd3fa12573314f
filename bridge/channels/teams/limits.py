"""Teams' size and shape limits, as named constants, and a check that lists what a message breaks."""

from __future__ import annotations

import json
from typing import Any

from bridge.render.escape import safe_url

__all__ = [
    "ADAPTIVE_CARD_CONTENT_TYPE",
    "ADAPTIVE_CARD_SCHEMA",
    "ADAPTIVE_CARD_VERSION",
    "TEAMS_MAX_ACTIONS",
    "TEAMS_MAX_BODY_BYTES",
    "TEAMS_PAYLOAD_LIMIT_BYTES",
    "serialise",
    "violations",
]

ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ADAPTIVE_CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
ADAPTIVE_CARD_VERSION = "1.4"  # what Teams renders everywhere (desktop, web, mobile)

# Teams docs (add-incoming-webhook): a message is at most 28 KB; a Workflows run fails with "max allowed size
# is 28672 bytes". One run already failed at 24,453 bytes of body (msteams-docs #11274: Teams counts more
# than the raw body), so cap the UTF-8 JSON body well below both.
TEAMS_PAYLOAD_LIMIT_BYTES = 28_672
TEAMS_MAX_BODY_BYTES = 20_000
# Teams host config (`actions.maxActions: 6`): an action bar or ActionSet shows 6 actions; the rest are dropped.
TEAMS_MAX_ACTIONS = 6

# Adaptive Cards 1.4 element types (schema adaptive-card.json 1.4.0); anything else a client may not render.
_ELEMENT_TYPES = {
    "ActionSet", "ColumnSet", "Container", "FactSet", "Image", "ImageSet", "Input.ChoiceSet", "Input.Date",
    "Input.Number", "Input.Text", "Input.Time", "Input.Toggle", "Media", "RichTextBlock", "TextBlock",
}  # fmt: skip
_ACTION_TYPES = {"Action.OpenUrl", "Action.ShowCard", "Action.ToggleVisibility", "Action.Submit", "Action.Execute"}


def serialise(body: Any) -> bytes:
    """The body exactly as sent: compact UTF-8 JSON (what the size limit counts)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def _actions(actions: Any, where: str, problems: list[str]) -> None:
    if not isinstance(actions, list):
        problems.append(f"{where} is not a list")
        return
    if len(actions) > TEAMS_MAX_ACTIONS:
        problems.append(f"{where}: {len(actions)} actions > {TEAMS_MAX_ACTIONS}")
    for i, action in enumerate(actions):
        kind = action.get("type") if isinstance(action, dict) else None
        if kind not in _ACTION_TYPES:
            problems.append(f"{where}[{i}]: unknown action type {str(kind)[:40]!r}")
        elif kind == "Action.OpenUrl" and not (isinstance(action.get("url"), str) and safe_url(action["url"])):
            problems.append(f"{where}[{i}]: url is not an http(s) URL")  # the value is not echoed


def _elements(elements: Any, where: str, problems: list[str]) -> None:
    if not isinstance(elements, list):
        problems.append(f"{where} is not a list")
        return
    for i, element in enumerate(elements):
        here = f"{where}[{i}]"
        kind = element.get("type") if isinstance(element, dict) else None
        if kind not in _ELEMENT_TYPES:
            problems.append(f"{here}: unknown element type {str(kind)[:40]!r}")
            continue
        if kind == "TextBlock" and not isinstance(element.get("text"), str):
            problems.append(f"{here}: TextBlock without text")
        elif kind == "Container":
            _elements(element.get("items"), f"{here}.items", problems)
        elif kind == "ColumnSet":
            for k, column in enumerate(element.get("columns") or []):
                _elements(column.get("items", []), f"{here}.columns[{k}].items", problems)
        elif kind == "FactSet":
            facts = element.get("facts")
            if not isinstance(facts, list) or not all(
                isinstance(f, dict) and isinstance(f.get("title"), str) and isinstance(f.get("value"), str)
                for f in facts
            ):
                problems.append(f"{here}: facts must be a list of {{title, value}} strings")
        elif kind == "ActionSet":
            _actions(element.get("actions"), f"{here}.actions", problems)


def violations(body: Any) -> list[str]:
    """What Teams would reject, or fail silently in the flow run, in a Workflows webhook body."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    size = len(serialise(body))
    if size > TEAMS_MAX_BODY_BYTES:
        problems.append(f"body {size} bytes > {TEAMS_MAX_BODY_BYTES} (Teams' limit is {TEAMS_PAYLOAD_LIMIT_BYTES})")
    if body.get("type") != "message":
        problems.append('type is not "message"')
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return [*problems, "no attachments"]
    for j, attachment in enumerate(attachments):
        here = f"attachments[{j}]"
        if not isinstance(attachment, dict) or attachment.get("contentType") != ADAPTIVE_CARD_CONTENT_TYPE:
            problems.append(f"{here}: contentType is not {ADAPTIVE_CARD_CONTENT_TYPE}")
            continue
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            problems.append(f"{here}.content: not an AdaptiveCard")
            continue
        if not isinstance(card.get("version"), str) or not card["version"]:
            problems.append(f"{here}.content: missing version")
        _elements(card.get("body", []), f"{here}.content.body", problems)
        if "actions" in card:
            _actions(card["actions"], f"{here}.content.actions", problems)
    return problems
