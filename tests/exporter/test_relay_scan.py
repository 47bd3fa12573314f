"""Pure helpers: the four-family scan, the validity check, fan-in rewriting and clash removal."""

from __future__ import annotations

import pytest

from exporter.expose import accepts_gzip
from exporter.relay import drop_families, merge_fanin
from exporter.scan import invalid_line, parse_labels, scan

BODY = b"""llm_requests_total{model="a"} 5
# HELP llm_requests_total all
# TYPE llm_requests_total counter
llm_requests_total{model="b",note="x}y"} 7 1700000000000
llm_requests_totally_different{model="a"} 9
llm_requests_failed_total{model="a",reason="r"} 1
llm_tokens_used_total{model="a",type="prompt"} 3e2
llm_response_latency_seconds_bucket{model="a",le="+Inf"} 4
llm_response_latency_seconds_sum{model="a"} 2.5
llm_response_latency_seconds_count{model="a"} 4
other 1
"""


def test_scan_finds_only_the_four_families():
    assert scan(BODY) == [
        (b'llm_requests_total{model="a"}', b"5"),
        (b'llm_requests_total{model="b",note="x}y"}', b"7"),
        (b'llm_requests_failed_total{model="a",reason="r"}', b"1"),
        (b'llm_tokens_used_total{model="a",type="prompt"}', b"3e2"),
        (b'llm_response_latency_seconds_bucket{model="a",le="+Inf"}', b"4"),
    ]


def test_parse_labels_unescapes():
    assert parse_labels(b'x{a="1",b="q\\"uote",c="back\\\\slash",d="new\\nline"}') == {
        "a": "1",
        "b": 'q"uote',
        "c": "back\\slash",
        "d": "new\nline",
    }
    assert parse_labels(b"x") == {}


@pytest.mark.parametrize(
    ("body", "line"),
    [
        pytest.param(BODY, None, id="valid"),
        pytest.param(b"", None, id="empty"),
        pytest.param(b'a 1\n\n# comment\nb{x="}"} -Inf 123\nc NaN', None, id="edge-values"),
        pytest.param(b"<html>\n", 1, id="html"),
        pytest.param(b"a 1\nhello world\n", 2, id="text"),
        pytest.param(b'a 1\n{"json": 1}\n', 2, id="json"),
        pytest.param(b'a 1\nb{x="1"\n', 2, id="cut-label-set"),
        pytest.param(b"a 1\nb\n", 2, id="no-value"),
    ],
)
def test_invalid_line(body, line):
    assert invalid_line(body) == line


def test_drop_families_removes_the_whole_family():
    body = (
        b"# HELP keep k\n# TYPE keep gauge\nkeep 1\n"
        b"# HELP llm_exporter_upstream_up theirs\n# TYPE llm_exporter_upstream_up gauge\n"
        b'llm_exporter_upstream_up{upstream="x"} 1\n'
        b'# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
    )
    out, dropped = drop_families(body, {b"llm_exporter_upstream_up"})
    assert dropped == {b"llm_exporter_upstream_up"}
    assert out == (
        b'# HELP keep k\n# TYPE keep gauge\nkeep 1\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n'
    )


def test_merge_fanin_labels_and_groups_families():
    a = b'# HELP h lat\n# TYPE h histogram\nh_bucket{le="+Inf"} 1\nh_sum 2\nh_count 1\nplain 3\n'
    b = b'# HELP h other help\n# TYPE h histogram\nh_bucket{le="+Inf"} 5\nh_sum 6\nh_count 5\nplain{} 4\n'
    out, dropped = merge_fanin([("a:1", a), ("b:2", b)])
    assert dropped == set()
    assert out.decode().splitlines() == [
        "# HELP h lat",
        "# TYPE h histogram",
        'h_bucket{upstream="a:1",le="+Inf"} 1',
        'h_sum{upstream="a:1"} 2',
        'h_count{upstream="a:1"} 1',
        'h_bucket{upstream="b:2",le="+Inf"} 5',
        'h_sum{upstream="b:2"} 6',
        'h_count{upstream="b:2"} 5',
        'plain{upstream="a:1"} 3',
        'plain{upstream="b:2"} 4',
    ]


def test_merge_fanin_keeps_an_existing_upstream_label_as_exported_upstream():
    out, _ = merge_fanin([("a:1", b'm{x="upstream=\\"no\\"",upstream="inner"} 1\n')])
    assert out == b'm{upstream="a:1",x="upstream=\\"no\\"",exported_upstream="inner"} 1\n'


def test_merge_fanin_skips_a_family_whose_type_clashes():
    out, _ = merge_fanin([("a:1", b"# TYPE m counter\nm 1\n"), ("b:2", b"# TYPE m gauge\nm 2\n")])
    assert out == b'# TYPE m counter\nm{upstream="a:1"} 1\n'


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("identity", False),
        ("*", True),
    ],
)
def test_accepts_gzip(header, expected):
    assert accepts_gzip(header) is expected


def test_find_prefixes_looks_at_line_starts_only():
    from exporter.scan import find_prefixes

    prefixes = (b"llm_request_", b"llm_exporter_")
    litellm = b'litellm_request_total_latency_metric_bucket{le="1.0"} 3\n' * 3
    assert not find_prefixes(litellm, prefixes)  # `llm_request_` inside a longer name is no clash
    assert find_prefixes(litellm + b'llm_request_failure_ratio{model="a"} 1\n', prefixes)
    assert find_prefixes(b"# TYPE llm_exporter_upstream_up gauge\n", prefixes)
    assert find_prefixes(b'llm_exporter_upstream_up{upstream="x"} 1\n', prefixes)  # the very first line
