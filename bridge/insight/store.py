"""Chart files under the data directory, named by unguessable ids, served without auth for Slack and Teams."""

from __future__ import annotations

import re
import secrets
import time
from pathlib import Path

__all__ = ["ChartStore"]

_ID = re.compile(r"[A-Za-z0-9_-]{24}")
KEEP_SECONDS = 7 * 24 * 3600.0  # a chart stays reachable from a message for a week


class ChartStore:
    """`<data_dir>/charts/<id>.png`; the id (144 random bits) is the only thing guarding a chart."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "charts"

    def save(self, png: bytes) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        chart_id = secrets.token_urlsafe(18)
        tmp = self.dir / f".{chart_id}.tmp"
        tmp.write_bytes(png)
        tmp.replace(self.dir / f"{chart_id}.png")
        return chart_id

    def path(self, chart_id: str) -> Path | None:
        """The file of a chart id, or None for a malformed or unknown id."""
        if not _ID.fullmatch(chart_id):
            return None
        path = self.dir / f"{chart_id}.png"
        return path if path.is_file() else None

    def prune(self, keep_seconds: float = KEEP_SECONDS, now: float | None = None) -> int:
        cutoff = (time.time() if now is None else now) - keep_seconds
        removed = 0
        for path in self.dir.glob("*.png") if self.dir.is_dir() else []:
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
            except OSError:
                continue
        return removed
