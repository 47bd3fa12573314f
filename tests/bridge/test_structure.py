"""The bridge's house: no import cycle between modules or rooms, and the shared layers know no channel.

Imports are counted wherever they are written: at the top, inside functions, under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BRIDGE = ROOT / "bridge"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module(p): p for p in sorted(BRIDGE.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every bridge module `path` imports, resolved to a module (a package's submodule when it names one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module for a in node.names
            ]
        else:
            continue
        found |= {n for n in names if n in MODULES}
    return found


GRAPH = {m: _imports(p) for m, p in MODULES.items()}


def _room(module: str) -> str:
    """`bridge/<dir>/` or `bridge/<file>.py`: the second component of the dotted name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_cycle_between_modules():
    assert _cycle(GRAPH) is None


def test_no_cycle_between_rooms():
    rooms: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        rooms.setdefault(_room(module), set()).update(_room(t) for t in targets if _room(t) != _room(module))
    assert _cycle(rooms) is None


def test_model_imports_nothing_of_the_bridge():
    assert GRAPH["bridge.model"] == set()


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("bridge.render") or m == "bridge.config"))
def test_shared_layers_know_no_channel(module):
    assert not {t for t in GRAPH[module] if t.startswith("bridge.channels")}


def test_no_import_workarounds():
    for path in MODULES.values():
        text = path.read_text()
        assert "import_module" not in text and "TYPE_CHECKING" not in text, path


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_every_module_imports_first_in_a_fresh_interpreter():
    """A cycle that Python resolves only in one import order fails here, whichever module comes first."""
    script = (
        "import importlib, sys\n"
        "failed = []\n"
        f"for name in {sorted(MODULES)!r}:\n"
        "    for loaded in [m for m in sys.modules if m == 'bridge' or m.startswith('bridge.')]:\n"
        "        del sys.modules[loaded]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as exc:\n"
        "        failed.append(f'{name}: {exc!r}')\n"
        "print('\\n'.join(failed))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""
