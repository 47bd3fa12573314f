"""The time-scale function changes durations, and only durations."""

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
import yaml

from stack.timescale import format_duration, parse_duration, scale_durations

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_FILES = [
    *sorted((ROOT / "deploy/prometheus/rules").glob("*.yml")),
    ROOT / "deploy/prometheus/prometheus.yml",
    ROOT / "deploy/alertmanager/alertmanager.yml",
]
_DURATION = re.compile(r"\b(?:\d+(?:ms|[smhdwy]))+\b")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("15s", 15_000), ("1h30m", 5_400_000), ("500ms", 500), ("2d", 172_800_000), ("1w", 604_800_000)],
)
def test_parse_duration(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize(("ms", "text"), [(90_000, "1m30s"), (250, "250ms"), (0, "1ms"), (3_600_000, "1h")])
def test_format_duration(ms, text):
    assert format_duration(ms) == text


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param("rate(x[5m])", "rate(x[5s])", id="range"),
        pytest.param("rate(x[5m] offset 1h)", "rate(x[5s] offset 1m)", id="offset"),
        pytest.param("max_over_time(x[1h:30s])", "max_over_time(x[1m:500ms])", id="subquery"),
        pytest.param("max_over_time(x[1h:])", "max_over_time(x[1m:])", id="subquery-default-step"),
        pytest.param("    for: 10m\n", "    for: 10s\n", id="for"),
        pytest.param("  group_wait: '30s' # why\n", "  group_wait: '500ms' # why\n", id="quoted-key-comment"),
        pytest.param('summary: "over 5m"\n', 'summary: "over 5m"\n', id="prose-untouched"),
        pytest.param('le="2"\n', 'le="2"\n', id="numbers-untouched"),
    ],
)
def test_scale_durations(before, after):
    assert scale_durations(before, Fraction(1, 60)) == after


def test_factor_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        scale_durations("for: 1m", 0)


def _walk_durations(node, path=""):
    """(path, value) for every string in a YAML tree, so two trees can be compared leaf by leaf."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk_durations(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk_durations(v, f"{path}[{i}]")
    else:
        yield path, node


@pytest.mark.parametrize("path", DEPLOY_FILES, ids=lambda p: p.name)
def test_deploy_files_differ_only_in_durations(path):
    original = path.read_text()
    scaled = scale_durations(original, Fraction(1, 60))
    assert scaled != original, "no duration scaled: the file should have some"
    # Same structure, and every leaf either equal or equal once its durations are divided back.
    a, b = dict(_walk_durations(yaml.safe_load(original))), dict(_walk_durations(yaml.safe_load(scaled)))
    assert a.keys() == b.keys()
    for key, value in a.items():
        if value == b[key]:
            continue
        assert isinstance(value, str), key
        before, after = _DURATION.findall(value), _DURATION.findall(b[key])
        assert [parse_duration(d) / 60 for d in before] == pytest.approx([parse_duration(d) for d in after], abs=1), key
        assert _DURATION.sub("D", value) == _DURATION.sub("D", b[key]), key


def test_scaled_rules_are_valid(tmp_path):
    for path in sorted((ROOT / "deploy/prometheus/rules").glob("*.yml")):
        out = tmp_path / path.name
        out.write_text(scale_durations(path.read_text(), Fraction(1, 60)))
        result = subprocess.run(["promtool", "check", "rules", str(out)], capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
