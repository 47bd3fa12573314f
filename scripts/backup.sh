#!/usr/bin/env bash
# Backs up the stack into backups/llm_monitoring_backup_YYYYMMDD_HHMMSS_full.tar.gz with a sha256 manifest:
# a Prometheus TSDB snapshot (admin API), Alertmanager silences (API v2), Grafana's database, the bridge's
# outbox (SQLite online backup) and the configs.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<'EOF'
Usage: scripts/backup.sh [options]

  --prometheus-url URL    Prometheus with --web.enable-admin-api (env PROMETHEUS_URL, default http://127.0.0.1:9090)
  --prometheus-data DIR   its TSDB directory on this machine (env PROMETHEUS_DATA_DIR); without it the
                          snapshot is copied out of the Compose service `prometheus`
  --alertmanager-url URL  (env ALERTMANAGER_URL, default http://127.0.0.1:9093)
  --grafana-db FILE       Grafana's grafana.db on this machine (env GRAFANA_DB); without it: from the
                          Compose service `grafana`
  --bridge-data DIR       the bridge's BRIDGE_DATA_DIR on this machine (env BRIDGE_DATA_DIR); without it:
                          from the Compose service `alert-bridge`
  --deploy-dir DIR        configs to include (env DEPLOY_DIR, default deploy/)
  --output-dir DIR        where the archive goes (env BACKUP_DIR, default backups/)
  --skip NAMES            comma-separated: prometheus, alertmanager, grafana, bridge, configs (env BACKUP_SKIP)
  --with-secrets          also include deploy/.env and deploy/secrets/ (the archive then holds secrets)
  --compose-file FILE     for the Compose fallbacks (default deploy/docker-compose.yml)

Prints the archive's path on the last line. Exits non-zero if any part that was not skipped fails.
EOF
}

prometheus_url=${PROMETHEUS_URL:-http://127.0.0.1:9090}
prometheus_data=${PROMETHEUS_DATA_DIR:-}
alertmanager_url=${ALERTMANAGER_URL:-http://127.0.0.1:9093}
grafana_db=${GRAFANA_DB:-}
bridge_data=${BRIDGE_DATA_DIR:-}
deploy_dir=${DEPLOY_DIR:-$repo/deploy}
output_dir=${BACKUP_DIR:-$repo/backups}
skip=${BACKUP_SKIP:-}
with_secrets=0
compose_file=$repo/deploy/docker-compose.yml
while [[ $# -gt 0 ]]; do
  case $1 in
    --prometheus-url) prometheus_url=${2:?}; shift 2 ;;
    --prometheus-data) prometheus_data=${2:?}; shift 2 ;;
    --alertmanager-url) alertmanager_url=${2:?}; shift 2 ;;
    --grafana-db) grafana_db=${2:?}; shift 2 ;;
    --bridge-data) bridge_data=${2:?}; shift 2 ;;
    --deploy-dir) deploy_dir=${2:?}; shift 2 ;;
    --output-dir) output_dir=${2:?}; shift 2 ;;
    --skip) skip=${2?}; shift 2 ;;
    --with-secrets) with_secrets=1; shift ;;
    --compose-file) compose_file=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "backup: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

skipped() { [[ ",$skip," == *",$1,"* ]]; }
log() { echo "backup: $*" >&2; }
die() { echo "backup: error: $*" >&2; exit 1; }
compose() { docker compose -f "$compose_file" "$@"; }
have_compose() { command -v docker >/dev/null && docker compose version >/dev/null 2>&1; }

# Copies the SQLite database $1 to $2 with SQLite's online backup API: consistent while the owner writes.
sqlite_backup() {
  python3 - "$1" "$2" <<'PY'
import sqlite3, sys
src = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
dst = sqlite3.connect(sys.argv[2])
with dst:
    src.backup(dst)
dst.close()
src.close()
PY
}

stamp=$(date +%Y%m%d_%H%M%S)
name=llm_monitoring_backup_${stamp}_full
mkdir -p "$output_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/$name
mkdir -p "$root"
components=()

if ! skipped prometheus; then
  # The snapshot is a set of hard links made by Prometheus itself: consistent, and instant.
  answer=$(curl -fsS --max-time 120 -X POST "$prometheus_url/api/v1/admin/tsdb/snapshot") \
    || die "prometheus snapshot failed at $prometheus_url (is --web.enable-admin-api set?)"
  snap=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["name"])' <<<"$answer")
  mkdir -p "$root/prometheus"
  if [[ -n $prometheus_data ]]; then
    [[ -d $prometheus_data/snapshots/$snap ]] || die "snapshot $snap not found under $prometheus_data/snapshots"
    cp -R "$prometheus_data/snapshots/$snap" "$root/prometheus/snapshot"
    rm -rf "${prometheus_data:?}/snapshots/$snap"
  elif have_compose; then
    compose cp "prometheus:/prometheus/snapshots/$snap" "$root/prometheus/snapshot" >/dev/null
    compose exec -T prometheus rm -rf "/prometheus/snapshots/$snap"
  else
    die "set --prometheus-data (Prometheus's TSDB directory) or run where docker compose can reach the stack"
  fi
  components+=(prometheus)
  log "prometheus: snapshot $snap"
fi

if ! skipped alertmanager; then
  # Through the API: the files on disk lag up to 15 minutes behind a running Alertmanager.
  curl -fsS --max-time 30 "$alertmanager_url/api/v2/silences" -o "$work/silences.json" \
    || die "cannot read silences from $alertmanager_url/api/v2/silences"
  mkdir -p "$root/alertmanager"
  count=$(python3 - "$work/silences.json" "$root/alertmanager/silences.json" <<'PY'
import json, sys
silences = [s for s in json.load(open(sys.argv[1])) if s["status"]["state"] != "expired"]
json.dump(silences, open(sys.argv[2], "w"), indent=2)
print(len(silences))
PY
)
  components+=(alertmanager)
  log "alertmanager: $count active or pending silence(s)"
fi

if ! skipped grafana; then
  mkdir -p "$root/grafana"
  if [[ -n $grafana_db ]]; then
    [[ -f $grafana_db ]] || die "grafana database $grafana_db not found"
    sqlite_backup "$grafana_db" "$root/grafana/grafana.db"
  elif have_compose; then
    # The Grafana image has no sqlite3: copy the file, then let SQLite check the copy.
    compose cp grafana:/var/lib/grafana/grafana.db "$root/grafana/grafana.db" >/dev/null
    python3 -c 'import sqlite3, sys; r = sqlite3.connect(sys.argv[1]).execute("pragma integrity_check").fetchone()[0]; sys.exit(r != "ok")' \
      "$root/grafana/grafana.db" || die "the copy of grafana.db is not consistent: retry, or stop grafana first"
  else
    die "set --grafana-db (path of grafana.db) or --skip grafana"
  fi
  components+=(grafana)
  log "grafana: grafana.db"
fi

if ! skipped bridge; then
  mkdir -p "$root/bridge"
  if [[ -n $bridge_data ]]; then
    [[ -d $bridge_data ]] || die "bridge data directory $bridge_data not found"
    found=0
    for db in "$bridge_data"/*.db; do
      [[ -e $db ]] || continue
      sqlite_backup "$db" "$root/bridge/$(basename "$db")"
      found=1
    done
    [[ $found == 1 ]] || log "bridge: no database in $bridge_data (nothing queued yet?)"
  elif have_compose; then
    compose exec -T alert-bridge python -c '
import pathlib, sqlite3
for p in pathlib.Path("/var/lib/alert-bridge").glob("*.db"):
    dst = sqlite3.connect(f"/tmp/{p.name}")
    with dst:
        sqlite3.connect(f"file:{p}?mode=ro", uri=True).backup(dst)
    print(p.name)
' > "$work/bridge-dbs"
    while read -r db; do
      compose cp "alert-bridge:/tmp/$db" "$root/bridge/$db" >/dev/null
      compose exec -T alert-bridge rm -f "/tmp/$db"
    done < "$work/bridge-dbs"
  else
    die "set --bridge-data (the bridge's BRIDGE_DATA_DIR) or --skip bridge"
  fi
  components+=(bridge)
  log "bridge: outbox"
fi

if ! skipped configs; then
  mkdir -p "$root/configs"
  for item in docker-compose.yml env.example config prometheus alertmanager grafana; do
    if [[ -e $deploy_dir/$item ]]; then cp -R "$deploy_dir/$item" "$root/configs/"; fi
  done
  # A copy of secrets/ that sits beside the Prometheus/Alertmanager configs (as under Compose) is not a config.
  rm -rf "$root/configs/prometheus/secrets" "$root/configs/alertmanager/secrets"
  if [[ $with_secrets == 1 ]]; then
    mkdir -p "$root/secrets"
    if [[ -f $deploy_dir/.env ]]; then cp "$deploy_dir/.env" "$root/secrets/.env"; fi
    if [[ -d $deploy_dir/secrets ]]; then cp -R "$deploy_dir/secrets" "$root/secrets/secrets"; fi
  fi
  components+=(configs)
  log "configs: $deploy_dir"
fi

[[ ${#components[@]} -gt 0 ]] || die "everything was skipped: nothing to back up"
{
  echo "created=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "components=$(IFS=,; echo "${components[*]}")"
  echo "secrets=$with_secrets"
} > "$root/backup-info.txt"

# The manifest: sha256 of every file, paths relative to the archive's top directory.
(cd "$root" && find . -type f -print0 | sort -z | xargs -0 sha256sum > "$work/MANIFEST.sha256")
mv "$work/MANIFEST.sha256" "$root/MANIFEST.sha256"

archive=$output_dir/$name.tar.gz
umask 077
tar -C "$work" -czf "$archive.partial" "$name"
mv "$archive.partial" "$archive"
log "wrote $archive ($(du -h "$archive" | cut -f1))"
echo "$archive"
