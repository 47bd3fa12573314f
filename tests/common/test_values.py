"""Durations and sizes: one syntax each, the same in every program."""

from __future__ import annotations

import pytest

from common.durations import parse_duration
from common.errors import ConfigError
from common.sizes import parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90.0),
        ("0.5", 0.5),
        ("0", 0.0),
        ("250ms", 0.25),
        ("15s", 15.0),
        ("2m", 120.0),
        ("1h30m", 5400.0),
        ("2s500ms", 2.5),
        ("1d", 86400.0),
        ("1w", 7 * 86400.0),
        ("1y", 365 * 86400.0),
        ("1y2w3d4h5m6s7ms", 365 * 86400 + 14 * 86400 + 3 * 86400 + 4 * 3600 + 5 * 60 + 6 + 0.007),
        (" 30s ", 30.0),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text, "X") == pytest.approx(seconds, abs=1e-9)


@pytest.mark.parametrize(
    "text",
    ["", " ", "inf", "nan", "-1s", "-5", "1x", "1.5m", "30s1m", "1h1h", "1H", "16M", "1 h", "1e3", "s", "ms"],
)
def test_parse_duration_rejects_naming_the_variable(text):
    with pytest.raises(ConfigError) as err:
        parse_duration(text, "SOME_VAR")
    assert str(err.value) == f"SOME_VAR: not a duration: {text!r} (use e.g. 30s, 2m, 1h30m)"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("16M", 16 * 1024**2),
        ("16MB", 16 * 1024**2),
        ("16MiB", 16 * 1024**2),
        ("16mib", 16 * 1024**2),
        ("16m", 16 * 1024**2),
        ("512KiB", 512 * 1024),
        ("512k", 512 * 1024),
        ("1.5MiB", 1536 * 1024),
        ("2GB", 2 * 1024**3),
        ("1T", 1024**4),
        ("1TiB", 1024**4),
        ("10B", 10),
        ("1234", 1234),
        ("64 MiB", 64 * 1024**2),
    ],
)
def test_parse_size_every_unit_is_a_power_of_1024(text, size):
    assert parse_size(text, "X") == size


@pytest.mark.parametrize("text", ["", "-1", "-1MiB", "inf", "nan", "1x", "1Mi", "1KiBB", "MiB", "1PiB", "1e3"])
def test_parse_size_rejects_naming_the_variable(text):
    with pytest.raises(ConfigError) as err:
        parse_size(text, "SOME_VAR")
    assert str(err.value).startswith("SOME_VAR: not a size:")
