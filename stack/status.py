"""What the running stack is doing, read from its own APIs: scenario phase, firing alerts, deliveries."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["Status", "deliveries", "firing_alerts", "format_status", "read_status"]


@dataclass(frozen=True)
class Status:
    """One look at the stack; fields are empty when a service did not answer."""

    scenario: str = "?"
    phase: str = "?"
    scenario_minute: float | None = None
    firing: tuple[str, ...] = ()
    delivered: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0


def firing_alerts(body: bytes | str) -> tuple[str, ...]:
    """`AlertName{model}` for every firing alert in a Prometheus /api/v1/alerts answer, sorted; Watchdog left out
    (it always fires, on purpose)."""
    data = json.loads(body)
    out = set()
    for alert in data.get("data", {}).get("alerts", []):
        labels = alert.get("labels", {})
        if alert.get("state") != "firing" or labels.get("alertname") == "Watchdog":
            continue
        where = labels.get("model") or labels.get("instance") or ""
        out.add(f"{labels.get('alertname', '?')}{{{where}}}" if where else labels.get("alertname", "?"))
    return tuple(sorted(out))


def deliveries(metrics_text: str) -> tuple[dict[str, int], int]:
    """From the bridge's /metrics: delivered count per channel, and the total dead-lettered."""
    delivered: dict[str, int] = {}
    dead = 0
    for family in text_string_to_metric_families(metrics_text):
        if family.name != "alert_bridge_deliveries":
            continue
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue
            if sample.labels.get("result") == "delivered":
                channel = sample.labels.get("channel", "?")
                delivered[channel] = delivered.get(channel, 0) + int(sample.value)
            elif sample.labels.get("result") == "dead_lettered":
                dead += int(sample.value)
    return delivered, dead


def format_status(status: Status, elapsed: float) -> str:
    """One short line: elapsed real time, scenario phase, firing alerts, deliveries."""
    minute = "" if status.scenario_minute is None else f" min {status.scenario_minute:.0f}"
    firing = ", ".join(status.firing) if status.firing else "none"
    sent = ", ".join(f"{k} {v}" for k, v in sorted(status.delivered.items())) or "0"
    dead = f" | dead letters {status.dead_lettered}" if status.dead_lettered else ""
    m, s = divmod(int(elapsed), 60)
    return f"[{m:02d}:{s:02d}] {status.scenario}: {status.phase}{minute} | firing: {firing} | delivered: {sent}{dead}"


def read_status(get, sim_url: str, prometheus_url: str, bridge_url: str) -> Status:
    """Ask the simulator, Prometheus and the bridge; `get(url) -> (status, body)`. Failures leave fields empty."""
    scenario = phase = "?"
    minute = None
    firing: tuple[str, ...] = ()
    delivered: dict[str, int] = {}
    dead = 0
    try:
        code, body = get(f"{sim_url}/scenario")
        if code == 200:
            state = json.loads(body)
            scenario, phase, minute = state["scenario"], state["phase"], float(state["scenario_minutes"])
    except (OSError, ValueError, KeyError):
        pass
    try:
        code, body = get(f"{prometheus_url}/api/v1/alerts")
        if code == 200:
            firing = firing_alerts(body)
    except (OSError, ValueError):
        pass
    try:
        code, body = get(f"{bridge_url}/metrics")
        if code == 200:
            delivered, dead = deliveries(body.decode())
    except (OSError, ValueError):
        pass
    return Status(scenario, phase, minute, firing, delivered, dead)
