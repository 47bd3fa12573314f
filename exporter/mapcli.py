"""`llm-exporter mappings` and `check-mapping`: list the presets, validate a mapping against an exposition."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from common.secrets import read_secret
from exporter.canonical import Canonical
from exporter.config import ConfigError
from exporter.mapping import CANONICAL, HistogramSource, MappingError, SourceMapping, preset_names, resolve_mapping
from exporter.scan import invalid_line
from exporter.upstream import ACCEPT

__all__ = ["COMMANDS", "run"]

COMMANDS = ("mappings", "check-mapping")
_TIMEOUT = 10.0


def _sources(mapping: SourceMapping, key: str) -> list[str]:
    names = []
    for source in getattr(mapping, key):
        name = source.histogram if isinstance(source, HistogramSource) else source.series
        extra = f" {source.match}" if source.match else ""
        names.append(f"{name}{extra}")
    return names


def _list(out: TextIO) -> int:
    out.write(f"{'name':<12} {'model label':<22} {'no source for':<34} description\n")
    for name in preset_names():
        mapping = resolve_mapping(name).mapping
        missing = ", ".join(mapping.missing()) or "-"
        out.write(f"{name:<12} {mapping.model_label:<22} {missing:<34} {mapping.description}\n")
    out.write("\nEXPORTER_MAPPING takes one of these names or the path of a YAML file in the same schema.\n")
    return 0


def _fetch(where: str) -> bytes:
    """An exposition from a URL (with LLM_PROXY_TOKEN / LLM_PROXY_TOKEN_FILE as Bearer token) or a file."""
    if not where.startswith(("http://", "https://")):
        return Path(where).read_bytes()
    token = read_secret(os.environ, "LLM_PROXY_TOKEN")
    headers = {"Accept": ACCEPT, "User-Agent": "llm-exporter check-mapping"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    with urllib.request.urlopen(urllib.request.Request(where, headers=headers), timeout=_TIMEOUT) as resp:
        return resp.read()


def _against(engine: Canonical, body: bytes, out: TextIO) -> int:
    line = invalid_line(body)
    if line is not None:
        out.write(f"not exposition text at line {line}\n")
        return 2
    samples = engine.scan(body)
    series: dict[str, set[bytes]] = {name: set() for name in CANONICAL.values()}
    models: dict[str, set[str]] = {name: set() for name in CANONICAL.values()}
    seen_names: set[bytes] = set()
    for sample, _ in samples:
        seen_names.add(sample.split(b"{", 1)[0])
        for family, model, _sub, _factor in engine.classify(sample):
            name = CANONICAL[family.split(":", 1)[0]]
            series[name].add(sample)
            models[name].add(model)
    out.write(f"\n{len(samples)} samples with a mapped name\n")
    out.write(f"{'canonical family':<34} {'series':>7}  models\n")
    for name in CANONICAL.values():
        shown = ", ".join(sorted(models[name])[:8]) + (" …" if len(models[name]) > 8 else "")
        out.write(f"{name:<34} {len(series[name]):>7}  {shown or '-'}\n")
    absent = sorted(n.decode() for n in set(engine.names) - seen_names)
    if absent:
        out.write(f"not in the exposition (older or newer names, or not enabled): {', '.join(absent)}\n")
    empty = [name for name in CANONICAL.values() if not series[name]]
    if empty:
        out.write(f"missing (no series): {', '.join(empty)}\n")
    if not samples:
        out.write("the mapping matches nothing in this exposition\n")
        return 1
    return 0


def _check(target: str, against: str | None, out: TextIO) -> int:
    try:
        loaded = resolve_mapping(target)
    except MappingError as exc:
        out.write(f"invalid mapping: {exc}\n")
        return 2
    mapping = loaded.mapping
    out.write(f"mapping {loaded.name}: valid ({mapping.description})\nmodel label: {mapping.model_label}\n")
    for key, name in CANONICAL.items():
        out.write(f"  {name:<34} ← {'; '.join(_sources(mapping, key)) or 'no source'}\n")
    if against is None:
        return 0
    try:
        body = _fetch(against)
    except ConfigError as exc:
        out.write(f"{exc}\n")
        return 2
    except (OSError, urllib.error.URLError, ValueError) as exc:
        # The reason only: a URL can hold credentials.
        out.write(f"cannot read the exposition: {type(exc).__name__}: {getattr(exc, 'reason', '') or ''}\n")
        return 2
    return _against(Canonical(mapping), body, out)


def run(argv: Sequence[str], out: TextIO = sys.stdout) -> int:
    """Run one of COMMANDS (argv[0]); returns the exit status."""
    parser = argparse.ArgumentParser(prog=f"llm-exporter {argv[0]}")
    if argv[0] == "mappings":
        parser.description = "List the mapping presets shipped with the sidecar."
        parser.parse_args(argv[1:])
        return _list(out)
    parser.description = (
        "Validate a mapping (a preset name or a YAML file) and, with --against, show what it finds in a live "
        "(URL; Bearer token from LLM_PROXY_TOKEN or LLM_PROXY_TOKEN_FILE) or saved exposition: series and models "
        "per canonical family, and what is missing. Exit 0: valid (and something matched), 1: matches nothing, "
        "2: invalid mapping or unreadable exposition."
    )
    parser.add_argument("mapping", metavar="FILE_OR_NAME")
    parser.add_argument("--against", metavar="URL_OR_FILE")
    args = parser.parse_args(argv[1:])
    return _check(args.mapping, args.against, out)
