"""backup.sh then restore.sh with the real Prometheus and Alertmanager: data and silences come back."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tarfile
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.deploy._stack_paths import SCRIPTS
from tests.realbin import run_alertmanager, run_prometheus

pytestmark = pytest.mark.realbin

PROMETHEUS_CONFIG = """
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ["127.0.0.1:%d"]}]
"""
ALERTMANAGER_CONFIG = """
route: {receiver: "null"}
receivers: [{name: "null"}]
"""


def _get(url: str) -> dict | list:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def _query(base: str, expr: str, at: float) -> list:
    qs = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    body = _get(f"{base}/api/v1/query?{qs}")
    assert body["status"] == "success"
    return sorted((json.dumps(r["metric"], sort_keys=True), r["value"][1]) for r in body["data"]["result"])


def _add_silence(base: str) -> None:
    now = datetime.now(UTC)
    silence = {
        "matchers": [{"name": "alertname", "value": "LLMHighLatency", "isRegex": False, "isEqual": True}],
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=2)).isoformat(),
        "createdBy": "ops",
        "comment": "maintenance of gpt-4o",
    }
    req = urllib.request.Request(
        f"{base}/api/v2/silences", json.dumps(silence).encode(), {"Content-Type": "application/json"}, method="POST"
    )
    urllib.request.urlopen(req, timeout=10).read()


def _silences(base: str) -> list[tuple]:
    return sorted(
        (s["comment"], s["createdBy"], json.dumps(s["matchers"], sort_keys=True))
        for s in _get(f"{base}/api/v2/silences")
        if s["status"]["state"] == "active"
    )


def _make_db(path: Path, rows: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    db.execute("pragma journal_mode=wal")  # as the bridge's outbox: the backup must include the WAL's content
    db.execute("create table t (v text)")
    db.executemany("insert into t values (?)", [(r,) for r in rows])
    db.commit()
    return db  # kept open, so that rows may still sit in the WAL


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / script), *args], capture_output=True, text=True, timeout=120)


def test_backup_wipe_restore_brings_back_data_and_silences(tmp_path):
    prom_dir, am_dir = tmp_path / "prom", tmp_path / "am"
    grafana_db, bridge_dir = tmp_path / "grafana" / "grafana.db", tmp_path / "bridge"
    keep = [_make_db(grafana_db, ["dashboard-star"]), _make_db(bridge_dir / "outbox.db", ["pending-1", "pending-2"])]

    with run_alertmanager(ALERTMANAGER_CONFIG, am_dir) as am:
        _add_silence(am.url)
        silences = _silences(am.url)
        assert len(silences) == 1
        with run_prometheus("", prom_dir, "--web.enable-admin-api") as prom:
            (prom_dir / "prometheus.yml").write_text(PROMETHEUS_CONFIG % prom.port)
            prom.reload()
            # Enough scrapes to compare, then a fixed instant in the past to query before and after.
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                at = time.time()
                if _query(prom.url, 'count_over_time(up{job="prometheus"}[1h]) >= 4', at):
                    break
                time.sleep(0.5)
            expected = {
                expr: _query(prom.url, expr, at)
                for expr in ('count_over_time(up{job="prometheus"}[1h])', "sum_over_time(scrape_samples_scraped[1h])")
            }
            assert all(expected.values()), expected
            result = _run(
                "backup.sh",
                *("--prometheus-url", prom.url, "--prometheus-data", str(prom_dir / "data")),
                *("--alertmanager-url", am.url, "--grafana-db", str(grafana_db), "--bridge-data", str(bridge_dir)),
                *("--output-dir", str(tmp_path / "backups")),
            )
            assert result.returncode == 0, result.stderr
    for db in keep:
        db.close()

    archive = Path(result.stdout.strip().splitlines()[-1])
    assert archive.parent == tmp_path / "backups"
    assert archive.name.startswith("llm_monitoring_backup_") and archive.name.endswith("_full.tar.gz")
    datetime.strptime(archive.name[len("llm_monitoring_backup_") : -len("_full.tar.gz")], "%Y%m%d_%H%M%S")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    top = archive.name[: -len(".tar.gz")]
    for member in ("MANIFEST.sha256", "alertmanager/silences.json", "grafana/grafana.db", "bridge/outbox.db",
                   "configs/docker-compose.yml", "configs/prometheus/prometheus.yml"):  # fmt: skip
        assert f"{top}/{member}" in names, member
    assert not any("/secrets" in n for n in names), "secrets only with --with-secrets"

    # Wipe everything, as on a new machine.
    for path in (prom_dir / "data", am_dir / "data", grafana_db.parent, bridge_dir):
        subprocess.run(["rm", "-rf", str(path)], check=True)

    with run_alertmanager(ALERTMANAGER_CONFIG, am_dir) as am:
        assert _silences(am.url) == []
        result = _run(
            "restore.sh",
            str(archive),
            *("--prometheus-data", str(prom_dir / "data"), "--alertmanager-url", am.url),
            *("--grafana-db", str(grafana_db), "--bridge-data", str(bridge_dir)),
        )
        assert result.returncode == 0, result.stderr
        assert _silences(am.url) == silences
        # Running it again re-creates nothing twice.
        again = _run("restore.sh", str(archive), "--alertmanager-url", am.url, "--skip", "prometheus,grafana,bridge")
        assert again.returncode == 0, again.stderr
        assert _silences(am.url) == silences

    with run_prometheus(PROMETHEUS_CONFIG % 1, prom_dir) as prom:
        for expr, value in expected.items():
            assert _query(prom.url, expr, at) == value, expr
    assert [r for (r,) in sqlite3.connect(grafana_db).execute("select v from t")] == ["dashboard-star"]
    assert [r for (r,) in sqlite3.connect(bridge_dir / "outbox.db").execute("select v from t")] == [
        "pending-1",
        "pending-2",
    ]


def test_restore_refuses_an_altered_archive(tmp_path):
    deploy = tmp_path / "deploy"
    (deploy / "prometheus").mkdir(parents=True)
    (deploy / "prometheus" / "prometheus.yml").write_text("global: {}\n")
    result = _run(
        "backup.sh", "--skip", "prometheus,alertmanager,grafana,bridge", "--deploy-dir", str(deploy),
        "--output-dir", str(tmp_path / "out"),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    archive = Path(result.stdout.strip().splitlines()[-1])
    assert _run("restore.sh", str(archive), "--configs-to", str(tmp_path / "ok")).returncode == 0
    assert (tmp_path / "ok" / "prometheus" / "prometheus.yml").read_text() == "global: {}\n"

    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(unpacked, filter="data")
    (top,) = unpacked.iterdir()
    (top / "configs" / "prometheus" / "prometheus.yml").write_text("global: {evil: true}\n")
    altered = tmp_path / "altered.tar.gz"
    with tarfile.open(altered, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    result = _run("restore.sh", str(altered), "--configs-to", str(tmp_path / "bad"))
    assert result.returncode != 0
    assert "manifest" in result.stderr
    assert not (tmp_path / "bad").exists()

    (top / "configs" / "prometheus" / "prometheus.yml").write_text("global: {}\n")
    (top / "configs" / "extra.yml").write_text("smuggled\n")
    with tarfile.open(altered, "w:gz") as tar:
        tar.add(top, arcname=top.name)
    result = _run("restore.sh", str(altered), "--configs-to", str(tmp_path / "bad"))
    assert result.returncode != 0 and "manifest" in result.stderr


def test_backup_fails_clearly_without_admin_api(tmp_path):
    with run_prometheus(PROMETHEUS_CONFIG % 1, tmp_path / "prom") as prom:
        result = _run(
            "backup.sh", "--prometheus-url", prom.url, "--prometheus-data", str(tmp_path / "prom" / "data"),
            "--skip", "alertmanager,grafana,bridge,configs", "--output-dir", str(tmp_path / "out"),
        )  # fmt: skip
    assert result.returncode != 0
    assert "web.enable-admin-api" in result.stderr
    assert not list((tmp_path / "out").glob("*.tar.gz"))
