"""Every kustomization renders; core objects are valid for Kubernetes 1.30, custom resources for the operator's CRDs."""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from tests.kubernetes.manifests import KUBE_DIR, REPO, crd_schema, kustomizations, one, render

KUBERNETES_VERSION = "1.30"
EXAMPLE = KUBE_DIR / "overlays" / "example"
OPERATOR_GROUP = "monitoring.coreos.com"


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(KUBE_DIR)) for p in paths]


def _core_errors(obj: dict) -> str | None:
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}"
    return None


def _nested_routes(route: dict) -> list[dict]:
    children = route.get("routes") or []
    return children + [r for child in children for r in _nested_routes(child)]


def _crd_errors(obj: dict) -> list[str]:
    schema = crd_schema(obj)
    checks = [(jsonschema.Draft202012Validator(schema), obj)]
    if obj["kind"] == "AlertmanagerConfig":
        # The CRD keeps child routes as free-form JSON (the operator checks them when it loads the object):
        # validate each against the route schema here.
        route = jsonschema.Draft202012Validator({"$ref": "#/$defs/Route", "$defs": schema["$defs"]})
        checks += [(route, r) for r in _nested_routes(obj["spec"].get("route") or {})]
    errors = []
    for validator, instance in checks:
        for error in validator.iter_errors(instance):
            best = jsonschema.exceptions.best_match([error])
            errors.append(
                f"{obj['kind']}/{obj['metadata']['name']}: {best.message[:300]} at {list(best.absolute_path)}"
            )
    return errors


def test_the_tree_has_a_base_an_example_overlay_and_the_sidecar_component():
    names = _ids(kustomizations())
    assert {"base", "overlays/example", "overlays/example/proxy"} <= set(names)
    assert (KUBE_DIR / "components" / "sidecar" / "kustomization.yaml").exists()


@pytest.mark.parametrize("path", kustomizations(), ids=_ids(kustomizations()))
def test_kustomization_renders_on_its_own(path: Path):
    objects = render(path)
    assert objects, f"{path.relative_to(REPO)} rendered nothing"
    for obj in objects:
        assert {"apiVersion", "kind", "metadata"} <= set(obj), obj


@pytest.mark.parametrize("path", kustomizations(), ids=_ids(kustomizations()))
def test_core_objects_are_valid_for_kubernetes_1_30(path: Path):
    core = [o for o in render(path) if not o["apiVersion"].startswith(OPERATOR_GROUP)]
    assert core
    errors = [e for e in map(_core_errors, core) if e]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("path", kustomizations(), ids=_ids(kustomizations()))
def test_custom_resources_are_valid_for_the_operator_crds(path: Path):
    errors = [e for o in render(path) if o["apiVersion"].startswith(OPERATOR_GROUP) for e in _crd_errors(o)]
    assert not errors, "\n".join(errors)


def test_the_example_overlay_holds_every_operator_kind():
    kinds = {o["kind"] for o in render(EXAMPLE) if o["apiVersion"].startswith(OPERATOR_GROUP)}
    assert kinds == {"PodMonitor", "ServiceMonitor", "PrometheusRule", "AlertmanagerConfig"}


# The validators must be able to say no: each mutation below is a mistake the API server would reject.
@pytest.mark.parametrize(
    ("kind", "name", "mutate"),
    [
        pytest.param(
            "PodMonitor",
            "llm-exporter",
            lambda o: o["spec"]["podMetricsEndpoints"][0].update(intervall="15s"),
            id="typo",
        ),
        pytest.param(
            "PodMonitor",
            "llm-exporter",
            lambda o: o["spec"]["podMetricsEndpoints"][0].update(interval="15 s"),
            id="bad-duration",
        ),
        pytest.param(
            "PrometheusRule",
            "llm-monitoring-alerts",
            lambda o: o["spec"]["groups"][0]["rules"][0].pop("expr"),
            id="rule-without-expr",
        ),
        pytest.param(
            "AlertmanagerConfig",
            "llm-monitoring",
            lambda o: o["spec"]["route"]["routes"][0]["matchers"][0].update(matchType="=="),
            id="bad-match-type-child-route",
        ),
        pytest.param(
            "AlertmanagerConfig",
            "llm-monitoring",
            lambda o: o["spec"]["inhibitRules"][0]["sourceMatch"][0].update(matchType="=="),
            id="bad-match-type-inhibit",
        ),
        pytest.param(
            "ServiceMonitor",
            "alert-bridge",
            lambda o: o["spec"]["endpoints"][0]["relabelings"][0].update(action="rename"),
            id="bad-relabel-action",
        ),
    ],
)
def test_crd_schemas_reject_broken_custom_resources(kind, name, mutate):
    obj = copy.deepcopy(one(render(EXAMPLE), kind, name))
    assert not _crd_errors(obj)
    mutate(obj)
    assert _crd_errors(obj)


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        pytest.param("StatefulSet", lambda o: o["spec"].update(replica=2), id="typo"),
        pytest.param(
            "StatefulSet",
            lambda o: o["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"].update(port=[1]),
            id="bad-port",
        ),
        pytest.param("PodDisruptionBudget", lambda o: o["spec"].update(minAvailable=[1]), id="bad-type"),
    ],
)
def test_kubernetes_validate_rejects_broken_core_objects(kind, mutate):
    obj = copy.deepcopy(one(render(EXAMPLE), kind))
    assert _core_errors(obj) is None
    mutate(obj)
    assert _core_errors(obj)
