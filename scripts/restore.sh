#!/usr/bin/env bash
# Restores a backup made by scripts/backup.sh: checks its sha256 manifest first, then puts back the
# Prometheus TSDB, Grafana's database and the bridge's outbox, and re-creates the silences through
# Alertmanager's API.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

usage() {
  cat <<'EOF'
Usage: scripts/restore.sh ARCHIVE [options]

  --prometheus-data DIR   restore the TSDB into DIR (env PROMETHEUS_DATA_DIR); Prometheus must be stopped.
                          Without it: into the Compose service `prometheus`'s volume (stopped, restored,
                          started again).
  --alertmanager-url URL  re-create silences there; Alertmanager must run (env ALERTMANAGER_URL,
                          default http://127.0.0.1:9093)
  --grafana-db FILE       write grafana.db to FILE (env GRAFANA_DB); Grafana must be stopped.
                          Without it: into the Compose service `grafana`'s volume.
  --bridge-data DIR       write the outbox into DIR (env BRIDGE_DATA_DIR); the bridge must be stopped.
                          Without it: into the Compose service `alert-bridge`'s volume.
  --configs-to DIR        also unpack the configs (and secrets, if backed up) into DIR (default: not restored)
  --skip NAMES            comma-separated: prometheus, alertmanager, grafana, bridge (env RESTORE_SKIP)
  --compose-file FILE     for the Compose fallbacks (default deploy/docker-compose.yml)

Data already in a target directory is moved aside to <dir>.pre-restore-<time>, never deleted.
EOF
}

archive=
alertmanager_url=${ALERTMANAGER_URL:-http://127.0.0.1:9093}
prometheus_data=${PROMETHEUS_DATA_DIR:-}
grafana_db=${GRAFANA_DB:-}
bridge_data=${BRIDGE_DATA_DIR:-}
configs_to=
skip=${RESTORE_SKIP:-}
compose_file=$repo/deploy/docker-compose.yml
while [[ $# -gt 0 ]]; do
  case $1 in
    --prometheus-data) prometheus_data=${2:?}; shift 2 ;;
    --alertmanager-url) alertmanager_url=${2:?}; shift 2 ;;
    --grafana-db) grafana_db=${2:?}; shift 2 ;;
    --bridge-data) bridge_data=${2:?}; shift 2 ;;
    --configs-to) configs_to=${2:?}; shift 2 ;;
    --skip) skip=${2?}; shift 2 ;;
    --compose-file) compose_file=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "restore: unknown option: $1 (see --help)" >&2; exit 2 ;;
    *) [[ -z $archive ]] || { echo "restore: one archive only" >&2; exit 2; }; archive=$1; shift ;;
  esac
done
[[ -n $archive ]] || { usage >&2; exit 2; }
[[ -f $archive ]] || { echo "restore: error: $archive not found" >&2; exit 1; }

skipped() { [[ ",$skip," == *",$1,"* ]]; }
log() { echo "restore: $*" >&2; }
die() { echo "restore: error: $*" >&2; exit 1; }
compose() { docker compose -f "$compose_file" "$@"; }
have_compose() { command -v docker >/dev/null && docker compose version >/dev/null 2>&1; }
stamp=$(date +%Y%m%d_%H%M%S)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$archive"
tops=("$work"/llm_monitoring_backup_*)
[[ ${#tops[@]} == 1 && -d ${tops[0]} ]] || die "$archive is not a backup made by scripts/backup.sh"
root=${tops[0]}
[[ -f $root/MANIFEST.sha256 ]] || die "$archive has no MANIFEST.sha256"

# Every file listed must match, and no file may be missing from the list.
(cd "$root" && sha256sum --quiet --strict -c MANIFEST.sha256) >&2 || die "manifest check failed: $archive is damaged or altered"
listed=$(cd "$root" && sed 's/^[0-9a-f]\{64\}  //' MANIFEST.sha256 | sort)
present=$(cd "$root" && find . -type f ! -name MANIFEST.sha256 | sort)
[[ $listed == "$present" ]] || die "manifest check failed: files in $archive that the manifest does not list"
log "manifest OK ($(wc -l < "$root/MANIFEST.sha256") files)"

# Moves DIR aside (if it holds anything) and creates it empty.
fresh_dir() {
  if [[ -d $1 && -n $(ls -A "$1") ]]; then
    mv "$1" "$1.pre-restore-$stamp"
    log "kept the previous contents in $1.pre-restore-$stamp"
  fi
  mkdir -p "$1"
}

# Replaces the contents of SERVICE's directory PATH with the local directory SRC, through a one-off
# container of the service (same image, same volume), with the service stopped meanwhile.
into_volume() {
  local service=$1 path=$2 src=$3
  compose stop "$service" >/dev/null
  compose run --rm --no-deps -T -v "$src:/restore:ro" --entrypoint sh "$service" \
    -c "rm -rf $path/* && cp -R /restore/. $path/"
  compose start "$service" >/dev/null
}

if [[ -d $root/prometheus/snapshot ]] && ! skipped prometheus; then
  if [[ -n $prometheus_data ]]; then
    fresh_dir "$prometheus_data"
    cp -R "$root/prometheus/snapshot/." "$prometheus_data/"
  elif have_compose; then
    into_volume prometheus /prometheus "$root/prometheus/snapshot"
  else
    die "set --prometheus-data (Prometheus's TSDB directory) or run where docker compose can reach the stack"
  fi
  log "prometheus: TSDB restored"
fi

if [[ -d $root/grafana ]] && ! skipped grafana; then
  if [[ -n $grafana_db ]]; then
    [[ -f $grafana_db ]] && mv "$grafana_db" "$grafana_db.pre-restore-$stamp"
    mkdir -p "$(dirname "$grafana_db")"
    cp "$root/grafana/grafana.db" "$grafana_db"
  elif have_compose; then
    into_volume grafana /var/lib/grafana "$root/grafana"
  else
    die "set --grafana-db (path of grafana.db) or --skip grafana"
  fi
  log "grafana: grafana.db restored"
fi

if [[ -d $root/bridge ]] && ! skipped bridge; then
  if [[ -n $bridge_data ]]; then
    fresh_dir "$bridge_data"
    cp -R "$root/bridge/." "$bridge_data/"
  elif have_compose; then
    into_volume alert-bridge /var/lib/alert-bridge "$root/bridge"
  else
    die "set --bridge-data (the bridge's BRIDGE_DATA_DIR) or --skip bridge"
  fi
  log "bridge: outbox restored"
fi

if [[ -f $root/alertmanager/silences.json ]] && ! skipped alertmanager; then
  curl -fsS --max-time 30 "$alertmanager_url/api/v2/silences" -o "$work/current.json" \
    || die "cannot reach Alertmanager at $alertmanager_url (start it, then run again with --skip of the rest)"
  # Re-created as new silences (ids are Alertmanager's); those already present, or expired since, are left.
  python3 - "$root/alertmanager/silences.json" "$work/current.json" "$alertmanager_url" <<'PY'
import json, sys, urllib.request
from datetime import datetime, timezone

saved, current, url = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]


def key(s):
    matchers = sorted(json.dumps(m, sort_keys=True) for m in s["matchers"])
    return (tuple(matchers), s.get("comment", ""), s.get("createdBy", ""))


active = {key(s) for s in current if s["status"]["state"] != "expired"}
now = datetime.now(timezone.utc)
created = skipped = 0
for s in saved:
    ends = datetime.fromisoformat(s["endsAt"].replace("Z", "+00:00"))
    if ends <= now or key(s) in active:
        skipped += 1
        continue
    body = {k: s[k] for k in ("matchers", "startsAt", "endsAt", "createdBy", "comment")}
    if datetime.fromisoformat(body["startsAt"].replace("Z", "+00:00")) < now:
        body["startsAt"] = now.isoformat()
    req = urllib.request.Request(f"{url}/api/v2/silences", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        r.read()
    created += 1
print(f"restore: alertmanager: {created} silence(s) re-created, {skipped} already there or expired", file=sys.stderr)
PY
fi

if [[ -n $configs_to ]]; then
  mkdir -p "$configs_to"
  [[ -d $root/configs ]] && cp -R "$root/configs/." "$configs_to/"
  if [[ -d $root/secrets ]]; then
    (umask 077; cp -R "$root/secrets/." "$configs_to/")
  fi
  log "configs unpacked into $configs_to"
fi
log "done"
