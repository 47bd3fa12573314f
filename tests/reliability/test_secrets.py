"""No secret in any log line, metrics page or error body that the suite's runs produced.

Runs last in the session (see conftest.py). It reads every log file under the session's temporary directory
(the end-to-end stack's, when it ran in the same session, and every bridge started here) and every text the
reliability tests kept (metrics pages, error bodies, stderr), and looks for the tokens and webhook paths the
tests configured and for every token file written under that directory.
"""

from __future__ import annotations

from pathlib import Path

from tests.reliability.support import SECRET_PATH, TOKEN
from tests.reliability.test_auth import TOKEN as AUTH_TOKEN


def _secret_files(base: Path) -> dict[str, str]:
    out = {}
    for path in base.rglob("*"):
        name = path.name.lower()
        if path.is_file() and ("token" in name or "password" in name) and path.stat().st_size < 4096:
            value = path.read_text(errors="replace").strip()
            if len(value) >= 8:
                out[str(path.relative_to(base))] = value
    return out


def test_no_secret_in_any_log_metric_or_error_body(tmp_path_factory, figures):
    base = tmp_path_factory.getbasetemp()
    logs = [p for p in base.rglob("*.log") if p.is_file()]
    texts = [p.read_text(errors="replace") for p in logs] + figures.texts
    secrets = {"bridge token": TOKEN, "auth suite token": AUTH_TOKEN, "fuzz token": "fuzz-token"}
    # A webhook URL's secret is its path beyond the first segment.
    secrets |= {f"webhook path segment {i}": seg for i, seg in enumerate(SECRET_PATH.split("/")[1:])}
    secrets |= {f"file {name}": value for name, value in _secret_files(base).items()}
    found = [(what, i) for what, value in secrets.items() for i, text in enumerate(texts) if value in text]
    assert not found, f"secrets found: {sorted({w for w, _ in found})}"
    assert sum(len(t) for t in texts) > 10_000, "the suite should have left logs to search"
    figures.record("secrets", "log files searched (under the session's temporary directory)", len(logs))
    figures.record("secrets", "other texts searched (metrics pages, error bodies, stderr)", len(figures.texts))
    figures.record("secrets", "bytes searched", sum(len(t) for t in texts))
    figures.record("secrets", "secrets looked for", len(secrets))
    figures.record("secrets", "found", 0)
