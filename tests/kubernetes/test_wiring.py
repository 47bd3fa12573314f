"""The example overlay's objects fit together: selectors, ports, Secrets, job labels, probes, security, images."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

from tests.kubernetes.manifests import KUBE_DIR, REPO, one, render

EXAMPLE = KUBE_DIR / "overlays" / "example"


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render(EXAMPLE)


def _selects(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


def _containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


def _compose_jobs() -> dict[str, str]:
    """Compose target host → job name, from deploy/prometheus/prometheus.yml."""
    config = yaml.safe_load((REPO / "deploy" / "prometheus" / "prometheus.yml").read_text())
    return {
        target.split(":")[0]: job["job_name"]
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }


def _job_relabel(endpoint: dict) -> str:
    [relabel] = [r for r in endpoint.get("relabelings", []) if r.get("targetLabel") == "job"]
    assert relabel["action"] == "replace" and not relabel.get("sourceLabels")
    return relabel["replacement"]


def _secret_keys(objects: list[dict], name: str) -> set[str]:
    secret = one(objects, "Secret", name)
    return set(secret.get("data", {})) | set(secret.get("stringData", {}))


def test_sidecar_joins_the_proxy_deployment_named_in_the_overlay(objects):
    proxy = one(objects, "Deployment", "llm-proxy-sim")
    names = [c["name"] for c in _containers(proxy)]
    # The proxy's own container stays first: kubectl logs and exec default to it.
    assert names == ["llm-proxy-sim", "llm-exporter"]
    sidecar = _containers(proxy)[1]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    [port] = sidecar["ports"]
    assert env["EXPORTER_LISTEN"].endswith(f":{port['containerPort']}")
    # The proxy's metrics port (the overlay's parameter) is the port the proxy container serves on.
    config = one(objects, "ConfigMap", "llm-exporter")
    [sim_port] = _containers(proxy)[0]["ports"]
    assert config["data"]["LLM_PROXY_URL"] == f"http://127.0.0.1:{sim_port['containerPort']}/metrics"
    assert sidecar["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]


def test_podmonitor_scrapes_the_sidecar_with_its_token_under_the_compose_job_name(objects):
    proxy = one(objects, "Deployment", "llm-proxy-sim")
    monitor = one(objects, "PodMonitor", "llm-exporter")
    assert _selects(monitor["spec"]["selector"], proxy["spec"]["template"]["metadata"]["labels"])
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    sidecar = _containers(proxy)[1]
    assert endpoint["port"] in {p["name"] for p in sidecar["ports"]}
    assert _job_relabel(endpoint) == _compose_jobs()["llm-exporter"]
    creds = endpoint["authorization"]["credentials"]
    assert endpoint["authorization"]["type"] == "Bearer"
    assert creds["key"] in _secret_keys(objects, creds["name"])
    # The sidecar demands the same key of the same Secret.
    volume = next(v for v in proxy["spec"]["template"]["spec"]["volumes"] if v["name"] == "llm-exporter-tokens")
    assert volume["secret"]["secretName"] == creds["name"]
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    mount = next(m for m in sidecar["volumeMounts"] if m["name"] == "llm-exporter-tokens")
    assert env["EXPORTER_TOKEN_FILE"] == f"{mount['mountPath']}/{creds['key']}"
    assert env["LLM_PROXY_TOKEN_FILE"].rsplit("/", 1)[1] in _secret_keys(objects, creds["name"])


def test_servicemonitor_scrapes_each_bridge_replica_once_under_the_compose_job_name(objects):
    monitor = one(objects, "ServiceMonitor", "alert-bridge")
    services = [o for o in objects if o["kind"] == "Service"]
    selected = [s for s in services if _selects(monitor["spec"]["selector"], s["metadata"].get("labels", {}))]
    assert [s["metadata"]["name"] for s in selected] == ["alert-bridge"]
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {p["name"] for p in selected[0]["spec"]["ports"]}
    assert _job_relabel(endpoint) == _compose_jobs()["alert-bridge"]


def test_bridge_statefulset_is_highly_available_and_locked_down(objects):
    sts = one(objects, "StatefulSet", "alert-bridge")
    spec = sts["spec"]
    assert spec["replicas"] == 2
    assert [t["metadata"]["name"] for t in spec["volumeClaimTemplates"]] == ["data"]
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [bridge] = pod["containers"]
    env = {e["name"]: e.get("value") for e in bridge["env"]}
    mounts = {m["name"]: m["mountPath"] for m in bridge["volumeMounts"]}
    assert env["BRIDGE_DATA_DIR"] == mounts["data"]
    assert bridge["securityContext"]["readOnlyRootFilesystem"] is True
    assert bridge["securityContext"]["allowPrivilegeEscalation"] is False
    assert bridge["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert bridge["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port = {p["name"]: p["containerPort"] for p in bridge["ports"]}[bridge["readinessProbe"]["httpGet"]["port"]]
    assert env["BRIDGE_LISTEN"].endswith(f":{port}")
    assert env["BRIDGE_TOKEN_FILE"].startswith(mounts["token"] + "/")
    pdb = one(objects, "PodDisruptionBudget", "alert-bridge")
    assert _selects(pdb["spec"]["selector"], spec["template"]["metadata"]["labels"])
    assert 0 < pdb["spec"]["minAvailable"] < spec["replicas"]
    for service in (o for o in objects if o["kind"] == "Service"):
        assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    assert one(objects, "Service", spec["serviceName"])["spec"]["clusterIP"] == "None"


def test_every_container_has_requests_limits_and_no_privileges(objects):
    for obj in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
        pod = obj["spec"]["template"]["spec"]
        for container in pod["containers"]:
            where = f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}"
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), where
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), where
            context = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
            assert context["runAsNonRoot"] is True, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"], where


def test_alertmanager_config_calls_the_bridge_service_with_the_bridge_token(objects):
    config = one(objects, "AlertmanagerConfig")
    service = one(objects, "Service", "alert-bridge")
    sts = one(objects, "StatefulSet", "alert-bridge")
    token_volume = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "token")
    hooks = [h for r in config["spec"]["receivers"] for h in r.get("webhookConfigs", [])]
    assert hooks
    for hook in hooks:
        m = re.fullmatch(r"http://([^.]+)\.([^.]+)\.svc:(\d+)/alerts/\w+", hook["url"])
        assert m, hook["url"]
        assert (m[1], m[2]) == (service["metadata"]["name"], service["metadata"]["namespace"])
        assert int(m[3]) in {p["port"] for p in service["spec"]["ports"]}
        creds = hook["httpConfig"]["authorization"]["credentials"]
        assert creds["name"] == token_volume["secret"]["secretName"]
        assert creds["key"] in _secret_keys(objects, creds["name"])


def test_every_environment_variable_set_is_documented_in_the_readme(objects):
    readme = (REPO / "README.md").read_text()
    names = set()
    for obj in objects:
        if obj["kind"] in ("Deployment", "StatefulSet"):
            names |= {e["name"] for c in _containers(obj) for e in c.get("env", [])}
        if obj["kind"] == "ConfigMap" and "grafana_dashboard" not in obj["metadata"].get("labels", {}):
            names |= set(obj.get("data", {}))
    assert names
    missing = sorted(n for n in names if f"`{n}`" not in readme)
    assert not missing, f"not in the README's tables: {missing}"


def test_every_image_is_the_project_image_at_the_project_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    for path in (KUBE_DIR / "base", EXAMPLE):
        for obj in render(path):
            if obj["kind"] in ("Deployment", "StatefulSet"):
                for container in _containers(obj):
                    assert container["image"] == f"llm-monitoring:{version}", (path.name, container["name"])


def test_operator_objects_carry_the_release_label_kube_prometheus_stack_selects_on(objects):
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com"):
            assert obj["metadata"]["labels"].get("release") == "kube-prometheus-stack", obj["metadata"]["name"]
