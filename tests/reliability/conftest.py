"""The reliability suite's figures: each test records what it measured; docs/reliability.md is rewritten from them.

Every section of the document lives between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->`; a run
replaces only the sections its tests measured, so running one test file updates only its own figures.
"""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"


class Figures:
    """Rows per section (measure, value); `texts` gathers every log, metrics page and error body seen."""

    def __init__(self) -> None:
        self.sections: dict[str, list[tuple[str, str]]] = {}
        self.texts: list[str] = []

    def record(self, section: str, measure: str, value: object) -> None:
        self.sections.setdefault(section, []).append((measure, str(value)))

    def write(self, doc: Path = DOC) -> None:
        if not self.sections or not doc.exists():
            return
        text = doc.read_text()
        stamp = (
            f"_Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by the test suite on "
            f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}._"
        )
        for name, rows in self.sections.items():
            table = "\n".join(["| measure | value |", "|---|---|", *(f"| {m} | {v} |" for m, v in rows)])
            block = f"<!-- figures:{name} -->\n{stamp}\n\n{table}\n<!-- /figures:{name} -->"
            pattern = re.compile(rf"<!-- figures:{re.escape(name)} -->.*?<!-- /figures:{re.escape(name)} -->", re.S)
            if pattern.search(text):
                text = pattern.sub(lambda _m, b=block: b, text)
        doc.write_text(text)


_FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return _FIGURES


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # The secrets check reads what every other test left behind: it runs last.
    last = [i for i in items if i.nodeid.startswith("tests/reliability/test_secrets.py")]
    items[:] = [i for i in items if i not in last] + last


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only figures of a run whose tests passed: a failed run must not publish numbers.
    if exitstatus == 0:
        _FIGURES.write()
