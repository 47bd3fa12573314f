"""Escaping: alert text never becomes a mention, a link or markup."""

from __future__ import annotations

import pytest

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
    assert escape.slack(raw) == expected


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
    assert forbidden not in escape.discord(raw)


@pytest.mark.parametrize("raw", ["# heading", "> quote", "- item", "1. item", "line\n## sub"])
def test_discord_line_starts_escaped(raw):
    out = escape.discord(raw)
    assert all(line.startswith("\\") for line in out.splitlines() if line[:1] in "#>-1")


def test_discord_keeps_plain_text_readable():
    assert escape.discord("gpt-4o failed 12% of requests") == "gpt-4o failed 12% of requests"


@pytest.mark.parametrize("raw", ["a\r\nBcc: x@y", "a\nb", "a\rb", "a\u2028b", "a\x00b", "a\x85b"])
def test_one_line(raw):
    out = escape.one_line(raw)
    assert not any(c in out for c in "\r\n\u2028\x00\x85")


def test_terminal_drops_ansi_keeps_newlines():
    assert escape.terminal("a\x1b[31mred\x07\r\nb\tc") == "a[31mred\nb\tc"


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
