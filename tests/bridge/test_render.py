"""The view model: status, colour, labels that matter, durations, and every link with its fallbacks."""

from __future__ import annotations

from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest

from bridge.channels import CHANNEL_TYPES
from bridge.config import ConfigError, load_config
from bridge.model import ChannelContext
from bridge.payload import parse_notification
from bridge.render.context import build_view, format_duration
from tests.fakes.payloads import alert, group, sample


def _view(payload, **ctx):
    return build_view(parse_notification(payload), ChannelContext(session=None, **ctx))


def test_firing_view_has_what_matters():
    view = _view(group([alert(extra_labels={"pod": "x-123", "team": "llm"})]))
    (a,) = view.alerts
    assert (view.STATUS, view.title, view.severity, view.colour_hex) == ("FIRING", "LLMHighFailureRate", "critical",
                                                                         "#D32F2F")  # fmt: skip
    assert a.labels == {"model": "gpt-4o", "job": "llm-auth-proxy", "instance": "llm-exporter:9470"}  # not pod, team
    assert (a.summary, a.started, a.duration) == ("High failure rate for gpt-4o", "2026-01-10 10:00:00 UTC", None)
    assert view.counts == "1 firing"


def test_resolved_view_has_duration_and_green():
    view = _view(group([alert(status="resolved")]))
    assert view.colour_hex == "#2E7D32" and view.alerts[0].duration == "7m 30s" and view.emoji == "✅"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (59, "59s"), (61, "1m 1s"), (3600, "1h 0m"), (3 * 86400 + 7200, "3d 2h")],
)
def test_format_duration(seconds, text):
    from datetime import timedelta

    assert format_duration(timedelta(seconds=seconds)) == text


def test_runbook_relative_completed_or_shown_as_text():
    with_base = _view(group([alert()]), runbook_base_url="https://git.example.com/llm/blob/main")
    assert (
        with_base.alerts[0].runbook_url == "https://git.example.com/llm/blob/main/docs/runbooks.md#llmhighfailurerate"
    )
    without = _view(group([alert()]))
    assert without.alerts[0].runbook_url is None
    assert without.alerts[0].runbook_text == "docs/runbooks.md#llmhighfailurerate"
    absolute = _view(group([alert(annotations={"runbook_url": "https://wiki.example.com/rb"})]))
    assert absolute.alerts[0].runbook_url == "https://wiki.example.com/rb"


def test_dashboard_from_annotation_else_grafana_url():
    own = _view(group([alert(annotations={"dashboard_url": "https://g.example.com/d/abc"})]),
                grafana_url="https://grafana.example.com")  # fmt: skip
    assert own.alerts[0].dashboard_url == "https://g.example.com/d/abc"
    fallback = _view(group([alert()]), grafana_url="https://grafana.example.com")
    assert fallback.alerts[0].dashboard_url == "https://grafana.example.com"
    relative = _view(group([alert(annotations={"dashboard_url": "/d/llm-overview"})]),
                     grafana_url="https://grafana.example.com/")  # fmt: skip
    assert relative.alerts[0].dashboard_url == "https://grafana.example.com/d/llm-overview"
    assert _view(group([alert()])).alerts[0].dashboard_url is None


def test_silence_link_prefilled_with_the_alerts_labels():
    view = _view(group([alert()], external_url="https://am.example.com"))
    url = view.alerts[0].silence_url
    assert url.startswith("https://am.example.com/#/silences/new?filter=")
    assert unquote(url.split("filter=")[1]) == (
        '{alertname="LLMHighFailureRate",instance="llm-exporter:9470",job="llm-auth-proxy",model="gpt-4o",'
        'severity="critical"}'
    )
    assert unquote(view.group_url.split("filter=")[1]) == '{alertname="LLMHighFailureRate"}'


@pytest.mark.parametrize(
    ("external", "override", "expected"),
    [
        pytest.param("http://alertmanager:9093", "https://am.example.com", "https://am.example.com", id="service-name"),
        pytest.param("http://127.0.0.1:9093", "https://am.example.com", "https://am.example.com", id="loopback"),
        pytest.param("https://am.corp.example", "https://am.example.com", "https://am.corp.example", id="public-kept"),
        pytest.param("http://alertmanager:9093", None, "http://alertmanager:9093", id="no-override"),
    ],
)
def test_alertmanager_url_substituted_when_internal(external, override, expected):
    view = _view(group([alert()], external_url=external), alertmanager_url=override)
    assert view.alerts[0].silence_url.startswith(expected + "/#/silences/new")


def test_source_rebased_on_prometheus_url_when_internal():
    view = _view(group([alert()]), prometheus_url="https://prom.example.com/")
    assert view.alerts[0].source_url == (
        "https://prom.example.com/graph?g0.expr=llm%3Afailure_ratio%3Arate5m+%3E+0.05&g0.tab=1"
    )
    assert _view(group([alert()])).alerts[0].source_url.startswith("http://prometheus:9090/graph?")


def test_group_counts_and_mixed_titles():
    payload = group([alert(), alert("LLMHighLatency", "warning", "resolved", index=1)], truncated=5)
    view = _view(payload)
    assert (view.firing_count, view.resolved_count, view.truncated_alerts) == (1, 1, 5)
    assert view.counts == "1 firing, 1 resolved, 5 not sent by Alertmanager"
    assert view.title == "2 alerts"


def test_sample_payload_renders():
    view = _view(sample("firing"))
    assert view.title == "DemoFailing" and view.alerts[0].labels == {"job": "demo"}


@pytest.mark.parametrize(
    ("stamp", "zone", "shown"),
    [
        pytest.param("2024-05-01T17:30:00+05:30", None, "2024-05-01 12:00:00 UTC", id="offset-to-utc"),
        pytest.param("2024-05-01T14:00:00+02:00", None, "2024-05-01 12:00:00 UTC", id="cest-to-utc"),
        pytest.param("2024-05-01T12:00:00Z", "Europe/Berlin", "2024-05-01 14:00:00 CEST", id="utc-to-berlin"),
        pytest.param("2024-01-01T12:00:00Z", "Asia/Kolkata", "2024-01-01 17:30:00 IST", id="utc-to-kolkata"),
    ],
)
def test_times_are_shown_in_one_zone(stamp, zone, shown):
    body = sample()
    body["alerts"][0]["startsAt"] = stamp
    tz = ZoneInfo(zone) if zone else None
    view = build_view(parse_notification(body), ChannelContext(session=None, timezone=tz))
    assert view.alerts[0].started == shown


def test_bridge_timezone_is_validated():
    assert load_config({"BRIDGE_TIMEZONE": "Europe/Berlin"}, CHANNEL_TYPES).timezone == ZoneInfo("Europe/Berlin")
    assert load_config({"BRIDGE_TIMEZONE": "UTC"}, CHANNEL_TYPES).timezone is None
    with pytest.raises(ConfigError, match="BRIDGE_TIMEZONE"):
        load_config({"BRIDGE_TIMEZONE": "Mars/Olympus"}, CHANNEL_TYPES)
