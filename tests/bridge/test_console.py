"""Console channel: readable text on stdout with the content every message must show."""

from __future__ import annotations

import io

from bridge.channels import create_channel
from bridge.channels.console import ConsoleSettings
from bridge.model import ChannelContext, Outcome
from bridge.payload import parse_notification
from tests.fakes.payloads import alert, group


async def test_prints_readable_message(capsys):
    ctx = ChannelContext(session=None, runbook_base_url="https://git.example.com/llm/blob/main/")
    channel = create_channel("console", ConsoleSettings(), ctx)
    payload = group([alert(), alert("LLMHighLatency", "warning", model="llama-3-70b", index=1)])
    messages = channel.render(parse_notification(payload))
    assert len(messages) == 1
    assert (await channel.send(messages[0])).outcome is Outcome.DELIVERED
    out = capsys.readouterr().out
    assert "[FIRING]" in out and "2 firing" in out
    assert "LLMHighFailureRate" in out and "severity=critical" in out and "model=gpt-4o" in out
    assert "High failure rate for gpt-4o" in out
    assert "https://git.example.com/llm/blob/main/docs/runbooks.md#llmhighfailurerate" in out
    assert "http://alertmanager:9093/#/silences/new?filter=" in out
    # critical first
    assert out.index("LLMHighFailureRate") < out.index("LLMHighLatency")


async def test_resolved_shows_duration_and_terminal_escapes_are_removed():
    stream = io.StringIO()
    from bridge.channels.console import ConsoleChannel

    channel = ConsoleChannel("console", ConsoleSettings(), ChannelContext(session=None), stream=stream)
    payload = group([alert(status="resolved", summary="evil \x1b[2J\x1b]0;title\x07 text\rover")])
    (message,) = channel.render(parse_notification(payload))
    await channel.send(message)
    out = stream.getvalue()
    assert "[RESOLVED]" in out and "resolved after 7m 30s" in out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert channel.type == "console" and channel.lane == "console"
