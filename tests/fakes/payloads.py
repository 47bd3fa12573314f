"""Alertmanager v4 payloads for tests: the committed samples, and built groups of any size or content."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

__all__ = ["alert", "group", "sample"]

SAMPLES = Path(__file__).resolve().parents[2] / "bridge" / "samples"


def sample(status: str = "firing") -> dict[str, Any]:
    """A payload captured from Alertmanager 0.25 (bridge/samples)."""
    return json.loads((SAMPLES / f"alertmanager-0.25-{status}.json").read_text())


def alert(
    name: str = "LLMHighFailureRate",
    severity: str = "critical",
    status: str = "firing",
    *,
    model: str = "gpt-4o",
    summary: str = "High failure rate for gpt-4o",
    description: str = "12% of requests to gpt-4o failed over 5m",
    extra_labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    index: int = 0,
) -> dict[str, Any]:
    labels = {
        "alertname": name,
        "severity": severity,
        "model": model,
        "job": "llm-auth-proxy",
        "instance": "llm-exporter:9470",
        **(extra_labels or {}),
    }
    return {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": summary,
            "description": description,
            "runbook_url": f"docs/runbooks.md#{name.lower()}",
            **(annotations or {}),
        },
        "startsAt": "2026-01-10T10:00:00.000Z",
        "endsAt": "2026-01-10T10:07:30.000Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=llm%3Afailure_ratio%3Arate5m+%3E+0.05&g0.tab=1",
        "fingerprint": f"{index:016x}",
    }


def group(
    alerts: list[dict[str, Any]],
    *,
    status: str | None = None,
    truncated: int = 0,
    external_url: str = "http://alertmanager:9093",
) -> dict[str, Any]:
    """A notification holding `alerts`; its status is firing when any alert fires."""
    alerts = copy.deepcopy(alerts)
    if status is None:
        status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    names = {a["labels"]["alertname"] for a in alerts}
    group_labels = {"alertname": names.pop()} if len(names) == 1 else {}
    return {
        "receiver": "critical",
        "status": status,
        "alerts": alerts,
        "groupLabels": group_labels,
        "commonLabels": group_labels,
        "commonAnnotations": {},
        "externalURL": external_url,
        "version": "4",
        "groupKey": '{}/{severity="critical"}:' + json.dumps(group_labels, sort_keys=True),
        "truncatedAlerts": truncated,
    }
