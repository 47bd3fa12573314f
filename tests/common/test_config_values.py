"""Every size and duration variable of the exporter, the bridge and the simulator reads the same text the same way.

The variables are not listed by hand: each program's own loader is run with a recording environment to learn which
variables it reads, and each one is probed with a duration and a size to learn which of them take one. The exporter
also declares the kind of each variable; the probe and the declaration must agree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from bridge.channels import CHANNEL_TYPES
from bridge.config import load_config
from common.durations import parse_duration
from common.errors import ConfigError
from common.sizes import parse_size
from exporter.config import VARIABLES
from exporter.config import load_config as exporter_load
from exporter.simulator.config import load_settings as sim_load

VALUES = ("16M", "16MB", "512KiB", "1.5MiB", "1h30m", "250ms", "90", "inf", "nan", "-1s", "1x")
PARSERS: dict[str, Callable[[str, str], float]] = {"duration": parse_duration, "size": parse_size}
# Values no program has as its default, so that setting them shows which field they land in.
PROBES = {"duration": ("1h30m", 5400.0), "size": ("3MiB", 3 * 1024**2)}


def bridge_load(env):
    return load_config(env, CHANNEL_TYPES)


class _Recording(dict):
    """An environment that remembers every variable the loader looked up."""

    def __init__(self, data: Mapping[str, str]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        self.read.add(key)
        return super().__contains__(key)


# Each program: its loader (environment → config object) and an environment it starts with. The exporter's
# windows must outlast its poll interval, so both are set apart from the values under test.
PROGRAMS: dict[str, tuple[Callable[[Mapping[str, str]], Any], dict[str, str]]] = {
    "exporter": (
        lambda env: exporter_load([], env),
        {"LLM_PROXY_URL": "http://127.0.0.1:9/metrics", "EXPORTER_POLL_INTERVAL": "100ms", "EXPORTER_WINDOWS": "1w"},
    ),
    "bridge": (bridge_load, {}),
    "simulator": (lambda env: sim_load([], env), {}),
}
# A floor under the discovery, so that a broken probe cannot pass by finding nothing.
KNOWN = {
    "exporter": {
        "LLM_PROXY_TIMEOUT",
        "EXPORTER_POLL_INTERVAL",
        "EXPORTER_WINDOWS",
        "EXPORTER_BASELINE",
        "EXPORTER_MAX_BODY",
    },
    "bridge": {
        "BRIDGE_MAX_BODY",
        "BRIDGE_DEDUPE_WINDOW",
        "BRIDGE_MAX_DELIVERY_AGE",
        "BRIDGE_RETRY_INITIAL",
        "BRIDGE_RETRY_MAX",
        "BRIDGE_SHUTDOWN_GRACE",
    },
    "simulator": set(),
}


def _fields(config: Any) -> dict[str, Any]:
    """The config's fields as plain values; a tuple of windows becomes the tuple of their lengths."""
    out = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if isinstance(value, tuple) and value and all(hasattr(v, "seconds") for v in value):
            value = tuple(v.seconds for v in value)
        out[f.name] = value
    return out


def _value(fields: dict[str, Any], name: str) -> Any:
    value = fields[name]
    return value[0] if isinstance(value, tuple) and len(value) == 1 else value


def _discover() -> Iterator[tuple[str, str, str, str]]:
    """(program, variable, kind, config field) for every variable that takes a duration or a size."""
    for program, (load, base) in PROGRAMS.items():
        env = _Recording(base)
        base_fields = _fields(load(env))
        for var in sorted(v for v in env.read if isinstance(v, str)):
            for kind, (text, expected) in PROBES.items():
                try:
                    fields = _fields(load({**base, var: text}))
                except ConfigError:
                    continue
                changed = [k for k in fields if fields[k] != base_fields[k] and _value(fields, k) == expected]
                if changed:
                    yield program, var, kind, changed[0]


DISCOVERED = list(_discover())


def test_discovery_finds_every_known_variable():
    for program, known in KNOWN.items():
        found = {var for p, var, _, _ in DISCOVERED if p == program}
        assert found >= known, (program, known - found)
    # The simulator takes no size or duration today; a new one joins the table below by itself.


def test_exporter_declarations_agree_with_the_probe():
    declared = {
        v.env: {"durations": "duration"}.get(v.kind, v.kind)
        for v in VARIABLES
        if v.kind in PARSERS or v.kind == "durations"
    }
    found = {var: kind for p, var, kind, _ in DISCOVERED if p == "exporter"}
    assert found == declared


@pytest.mark.parametrize("text", VALUES)
@pytest.mark.parametrize(("program", "var", "kind", "field"), DISCOVERED, ids=[f"{d[0]}-{d[1]}" for d in DISCOVERED])
def test_same_text_same_result_everywhere(program, var, kind, field, text):
    load, base = PROGRAMS[program]
    parse = PARSERS[kind]
    try:
        expected = parse(text, var)
    except ConfigError as exc:
        with pytest.raises(ConfigError) as err:
            load({**base, var: text})
        assert str(err.value) == str(exc)  # the one message, naming the variable
        return
    try:
        got = _value(_fields(load({**base, var: text})), field)
    except ConfigError as exc:
        # Parsed alike, then refused by the program's own range check (e.g. a body cap below 1KiB): the message
        # must name the variable and must not be a parse error.
        assert str(exc).startswith(f"{var}:") and "not a" not in str(exc), str(exc)
        return
    assert got == expected


def test_exporter_flags_read_values_like_the_variables():
    assert exporter_load(["--max-body", "16M", "--baseline", "1h30m"], PROGRAMS["exporter"][1]).max_body == 16 * 1024**2
    with pytest.raises(ConfigError, match=r"^LLM_PROXY_TIMEOUT: not a duration: 'nan'"):
        exporter_load(["--proxy-timeout", "nan"], PROGRAMS["exporter"][1])


def test_primary_values_are_accepted_everywhere():
    """Guards the range-check escape above: the common values must pass every program's checks."""
    for program, var, kind, field in DISCOVERED:
        load, base = PROGRAMS[program]
        text, expected = PROBES[kind]
        assert _value(_fields(load({**base, var: text})), field) == expected, (program, var)
