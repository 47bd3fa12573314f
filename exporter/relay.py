"""Relayed text: fan-in of several upstreams with an `upstream` label, and removal of clashing families."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Sequence

__all__ = ["drop_families", "merge_fanin"]

_SUFFIXES = {b"histogram": (b"_bucket", b"_sum", b"_count"), b"summary": (b"_sum", b"_count")}
_LABEL_PAIR = re.compile(rb'([a-zA-Z_][a-zA-Z0-9_]*)(\s*=\s*"(?:[^"\\]|\\.)*")')


def _sample_name(line: bytes) -> bytes:
    end = len(line)
    for sep in (b"{", b" ", b"\t"):
        i = line.find(sep)
        if 0 <= i < end:
            end = i
    return line[:end]


def _lines(body: bytes) -> Iterator[tuple[bytes, bytes | None, bytes | None, bytes]]:
    """(family, comment kind HELP/TYPE or None, type if a TYPE line, line) for every non-blank line."""
    family: bytes | None = None
    kind: bytes | None = None
    for line in body.split(b"\n"):
        if not line.strip():
            continue
        if line.startswith(b"#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in (b"HELP", b"TYPE"):
                if parts[2] != family:
                    family, kind = parts[2], None
                if parts[1] == b"TYPE":
                    kind = parts[3].strip() if len(parts) > 3 else b"untyped"
                    yield family, b"TYPE", kind, line
                else:
                    yield family, b"HELP", None, line
            continue  # other comments are dropped: they belong to no family
        name = _sample_name(line)
        if family is not None and (name == family or name in tuple(family + s for s in _SUFFIXES.get(kind, ()))):
            yield family, None, None, line
        else:
            family, kind = None, None
            yield name, None, None, line


def drop_families(body: bytes, names: Collection[bytes]) -> tuple[bytes, set[bytes]]:
    """The body without the families in `names`, and which of them were there."""
    kept: list[bytes] = []
    dropped: set[bytes] = set()
    for family, _, _, line in _lines(body):
        if family in names:
            dropped.add(family)
        else:
            kept.append(line)
    return (b"\n".join(kept) + b"\n" if kept else b""), dropped


def _rename_upstream(match: re.Match[bytes]) -> bytes:
    return (b"exported_upstream" if match.group(1) == b"upstream" else match.group(1)) + match.group(2)


def _labelled(line: bytes, label: bytes) -> bytes:
    name = _sample_name(line)
    rest = line[len(name) :]
    if rest.startswith(b"{"):
        inner = rest[1:]
        if inner.lstrip().startswith(b"}"):
            return name + b"{" + label + inner.lstrip()
        if b"upstream" in inner:  # an upstream label of its own is kept as exported_upstream, as Prometheus does
            inner = _LABEL_PAIR.sub(_rename_upstream, inner)
        return name + b"{" + label + b"," + inner
    return name + b"{" + label + b"}" + rest


def merge_fanin(parts: Sequence[tuple[str, bytes]], drop: Collection[bytes] = ()) -> tuple[bytes, set[bytes]]:
    """One exposition from several: each sample gains upstream="host:port", each family appears once."""
    families: dict[bytes, list[bytes | None]] = {}  # family → [HELP line, TYPE line, samples...]
    types: dict[bytes, bytes] = {}
    dropped: set[bytes] = set()
    for upstream, body in parts:
        label = b'upstream="' + upstream.encode() + b'"'
        skip: set[bytes] = set()  # families of this upstream whose type clashes with an earlier upstream's
        for family, kind, mtype, line in _lines(body):
            if family in drop:
                dropped.add(family)
                continue
            entry = families.setdefault(family, [None, None])
            if kind == b"HELP":
                entry[0] = entry[0] or line
            elif kind == b"TYPE":
                if family in types and types[family] != mtype:
                    skip.add(family)
                elif entry[1] is None:
                    entry[1], types[family] = line, mtype or b"untyped"
            elif family not in skip:
                entry.append(_labelled(line, label))
    out = [line for entry in families.values() for line in entry if line is not None]
    return (b"\n".join(out) + b"\n" if out else b""), dropped
