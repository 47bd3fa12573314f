"""Write the Prometheus Operator CRD schemas the Kubernetes tests validate against (run by hand, not by tests).

The CRDs are not downloadable here, so the schemas come from PyPI `cloudcoil-models-prometheus-operator`,
whose pydantic models are generated from the operator's CRDs (the package version is the operator's, plus
one digit): `pip install cloudcoil-models-prometheus-operator==0.80.1.0`, then
`python tests/kubernetes/crd_schemas/export.py`.
"""

from __future__ import annotations

import json
from importlib.metadata import version
from pathlib import Path
from typing import Any

from cloudcoil.models.prometheus_operator import v1, v1alpha1

__all__ = ["KINDS", "main"]

KINDS = {
    "monitoring.coreos.com/v1/PodMonitor": v1.PodMonitor,
    "monitoring.coreos.com/v1/PrometheusRule": v1.PrometheusRule,
    "monitoring.coreos.com/v1/ServiceMonitor": v1.ServiceMonitor,
    "monitoring.coreos.com/v1alpha1/AlertmanagerConfig": v1alpha1.AlertmanagerConfig,
}
_HERE = Path(__file__).resolve().parent


def _close(node: Any) -> None:
    # The API server rejects fields a CRD does not declare (kubectl's default strict field validation);
    # the models let them through, so every declared object is closed here.
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for value in node.values():
            _close(value)
    elif isinstance(node, list):
        for value in node:
            _close(value)


def main() -> None:
    """Write one JSON schema per kind and a VERSION file naming the source package and version."""
    package = "cloudcoil.models.prometheus_operator"
    for key, model in KINDS.items():
        schema = model.model_json_schema(by_alias=True)
        _close(schema)
        name = key.replace("monitoring.coreos.com/", "").replace("/", "-")
        (_HERE / f"{name}.json").write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n")
    (_HERE / "VERSION").write_text(
        f"source: PyPI cloudcoil-models-prometheus-operator {version(package)}\n"
        f"prometheus-operator: v{'.'.join(version(package).split('.')[:3])}\n"
    )


if __name__ == "__main__":
    main()
