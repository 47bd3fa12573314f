"""The real simulator, sidecar and bridge start with the environment, token files and probes the manifests give."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from stack.local import http_get
from tests.deploy._stack_paths import venv_bin
from tests.fakes.payloads import sample
from tests.kubernetes.manifests import KUBE_DIR, one, render
from tests.realbin import free_port, run_process, wait_http

EXAMPLE = KUBE_DIR / "overlays" / "example"


def _post(url: str, body: dict, token: str | None) -> int:
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


class _Pod:
    """A pod's volumes laid out under a temp dir: Secrets as files, emptyDirs and claims as directories."""

    def __init__(self, objects: list[dict], pod_spec: dict, root: Path) -> None:
        self.objects, self.root = objects, root
        self.volumes: dict[str, Path] = {}
        for volume in pod_spec.get("volumes", []):
            path = root / "volumes" / volume["name"]
            path.mkdir(parents=True)
            if "secret" in volume:
                secret = one(objects, "Secret", volume["secret"]["secretName"])
                items = volume["secret"].get("items") or [{"key": k, "path": k} for k in secret["data"]]
                for item in items:
                    (path / item["path"]).write_bytes(base64.b64decode(secret["data"][item["key"]]))
            self.volumes[volume["name"]] = path

    def env(self, container: dict, claims: tuple[str, ...] = ()) -> dict[str, str]:
        """The container's environment (envFrom ConfigMaps, then env), mount paths mapped into the temp dir."""
        for name in claims:
            self.volumes[name] = self.root / "volumes" / name
            self.volumes[name].mkdir(parents=True)
        mounts = {m["mountPath"]: self.volumes[m["name"]] for m in container.get("volumeMounts", [])}
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            if "configMapRef" in source:
                env.update(one(self.objects, "ConfigMap", source["configMapRef"]["name"])["data"])
        env.update({e["name"]: e["value"] for e in container.get("env", [])})
        for key, value in env.items():
            for mount, local in mounts.items():
                if value == mount or value.startswith(mount + "/"):
                    env[key] = str(local) + value[len(mount) :]
        return env


def _listen(env: dict[str, str], key: str) -> tuple[str, int]:
    """Rebind a 0.0.0.0:PORT listen variable to a free loopback port; returns the old and the new port."""
    old = env[key].rsplit(":", 1)[1]
    new = free_port()
    env[key] = f"127.0.0.1:{new}"
    return old, new


@contextlib.contextmanager
def _run(command: str, env: dict[str, str], log: Path, ready: str) -> Iterator[None]:
    with run_process([str(venv_bin(command))], log, ready, env=env, timeout=20):
        yield


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    return render(EXAMPLE)


def test_simulator_and_sidecar_run_with_the_deployments_settings(objects, tmp_path: Path):
    proxy = one(objects, "Deployment", "llm-proxy-sim")
    spec = proxy["spec"]["template"]["spec"]
    pod = _Pod(objects, spec, tmp_path)
    sim, sidecar = spec["containers"]
    sim_env, side_env = pod.env(sim), pod.env(sidecar)
    sim_port, sim_local = _listen(sim_env, "SIM_LISTEN")
    # The sidecar reaches the proxy over the pod's loopback: same port, here the simulator's free one.
    side_env["LLM_PROXY_URL"] = re.sub(rf":{sim_port}/", f":{sim_local}/", side_env["LLM_PROXY_URL"])
    _, side_local = _listen(side_env, "EXPORTER_LISTEN")
    side_env["EXPORTER_POLL_INTERVAL"] = "1"
    secret = one(objects, "Secret", "llm-exporter")
    exporter_token = base64.b64decode(secret["data"]["exporter-token"]).decode()
    sim_probe = sim["readinessProbe"]["httpGet"]["path"]
    side_probe = sidecar["livenessProbe"]["httpGet"]["path"]
    with (
        _run("llm-proxy-sim", sim_env, tmp_path / "sim.log", f"http://127.0.0.1:{sim_local}{sim_probe}"),
        _run("llm-exporter", side_env, tmp_path / "exporter.log", f"http://127.0.0.1:{side_local}{side_probe}"),
    ):
        wait_http(f"http://127.0.0.1:{side_local}/readyz", timeout=15)  # the proxy token was accepted
        status, body = http_get(f"http://127.0.0.1:{side_local}/metrics", exporter_token)
        assert status == 200
        assert b"llm_requests_total{" in body
        assert b"llm_exporter_upstream_up" in body
        assert http_get(f"http://127.0.0.1:{side_local}/metrics")[0] == 401
    logs = (tmp_path / "exporter.log").read_text() + (tmp_path / "sim.log").read_text()
    for value in secret["data"].values():
        assert base64.b64decode(value).decode() not in logs


def test_bridge_runs_with_the_statefulsets_settings_and_takes_alertmanagers_call(objects, tmp_path: Path):
    sts = one(objects, "StatefulSet", "alert-bridge")
    spec = sts["spec"]["template"]["spec"]
    pod = _Pod(objects, spec, tmp_path)
    [bridge] = spec["containers"]
    claims = tuple(t["metadata"]["name"] for t in sts["spec"]["volumeClaimTemplates"])
    env = pod.env(bridge, claims)
    _, port = _listen(env, "BRIDGE_LISTEN")
    base = f"http://127.0.0.1:{port}"
    config = one(objects, "AlertmanagerConfig")
    token = base64.b64decode(one(objects, "Secret", "alert-bridge-token")["data"]["token"]).decode()
    with _run("alert-bridge", env, tmp_path / "bridge.log", base + bridge["readinessProbe"]["httpGet"]["path"]):
        assert http_get(base + bridge["livenessProbe"]["httpGet"]["path"])[0] == 200
        for receiver in config["spec"]["receivers"]:
            for hook in receiver.get("webhookConfigs", []):
                path = re.sub(r"^http://[^/]+", "", hook["url"])
                assert _post(base + path, sample(), token) == 200, path
                assert _post(base + path, sample(), None) == 401, path
    assert (pod.volumes["data"] / "outbox.db").exists()
    assert token not in (tmp_path / "bridge.log").read_text()
