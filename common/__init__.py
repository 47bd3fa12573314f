"""Plumbing shared by the exporter, the simulator, the bridge, the local stack and the benchmarks."""

from __future__ import annotations

from importlib import metadata

__all__ = ["program_version"]

DISTRIBUTION = "llm-monitoring"


def program_version(program: str) -> str:
    """The `--version` line of a command: `llm-exporter (llm-monitoring 0.1.0)`."""
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        version = "unknown"
    return f"{program} ({DISTRIBUTION} {version})"
