"""Escaping: alert text never becomes a mention, a link or markup."""

from __future__ import annotations

import re

import pytest

from bridge.channels.console.channel import terminal
from bridge.channels.discord.escape import escape as discord
from bridge.channels.slack.escape import escape as slack
from bridge.render import escape


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("<!channel>", "&lt;!channel&gt;", id="channel"),
        pytest.param("<!here> hi", "&lt;!here&gt; hi", id="here"),
        pytest.param("<@U123>", "&lt;@U123&gt;", id="user"),
        pytest.param("<http://evil|click>", "&lt;http://evil|click&gt;", id="link"),
        pytest.param("a & b", "a &amp; b", id="amp"),
        pytest.param("&lt;", "&amp;lt;", id="entity-not-decoded"),
    ],
)
def test_slack(raw, expected):
    assert slack(raw) == expected


@pytest.mark.parametrize(
    ("raw", "forbidden"),
    [
        pytest.param("@everyone", "@everyone", id="everyone"),
        pytest.param("@here", "@here", id="here"),
        pytest.param("<@123>", "<@123>", id="user"),
        pytest.param("<@&123>", "<@&123>", id="role"),
        pytest.param("[click](http://evil)", "[click](", id="masked-link"),
        pytest.param("**bold**", "**", id="bold"),
        pytest.param("`code`", "`code`", id="code"),
        pytest.param("||spoiler||", "||", id="spoiler"),
    ],
)
def test_discord(raw, forbidden):
    assert forbidden not in discord(raw)


# What Discord's markdown reads as a block at a line start: headings, subtext, quotes, bullets, ordered lists.
_DISCORD_BLOCK = re.compile(r"^\s*(#{1,3}\s|-#\s|>|[-+*]\s|\d+\.\s)")


@pytest.mark.parametrize("raw", ["# heading", "> quote", "- item", "+ item", "1. item", "line\n## sub", "-# small"])
def test_discord_line_starts_escaped(raw):
    out = discord(raw)
    assert not any(_DISCORD_BLOCK.match(line) for line in out.splitlines())


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("10.30.1.162:9100", id="ip-at-line-start"),
        pytest.param("instance 10.30.1.162", id="ip-after-text"),
        pytest.param("2.5s p95\n-5% traffic\n#general", id="no-space-after-marker"),
    ],
)
def test_discord_leaves_what_is_not_markdown_alone(raw):
    """Peers' payloads: `instance \\10.30.1.162` showed a stray backslash; nothing to escape there."""
    assert discord(raw) == raw


def test_discord_ordered_list_escape_is_invisible():
    # A backslash before the dot is hidden by Discord; before the digit it would show.
    assert discord("1. item") == "1\\. item"


def test_discord_keeps_plain_text_readable():
    assert discord("gpt-4o failed 12% of requests") == "gpt-4o failed 12% of requests"


@pytest.mark.parametrize("raw", ["a\r\nBcc: x@y", "a\nb", "a\rb", "a\u2028b", "a\x00b", "a\x85b"])
def test_one_line(raw):
    out = escape.one_line(raw)
    assert not any(c in out for c in "\r\n\u2028\x00\x85")


def test_terminal_drops_ansi_keeps_newlines():
    assert terminal("a\x1b[31mred\x07\r\nb\tc") == "a[31mred\nb\tc"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://x.example/a b", "https://x.example/a%20b", id="space"),
        pytest.param("https://x.example/a|b>c)d]", "https://x.example/a%7Cb%3Ec%29d%5D", id="markup-closers"),
        pytest.param('https://x.example/"onclick=', "https://x.example/%22onclick=", id="quote"),
        pytest.param("https://x.example/?a=1&b=%20", "https://x.example/?a=1&b=%20", id="query-kept"),
        pytest.param("javascript:alert(1)", None, id="javascript"),
        pytest.param("docs/runbooks.md#x", None, id="relative"),
        pytest.param("", None, id="empty"),
    ],
)
def test_safe_url(url, expected):
    assert escape.safe_url(url) == expected
