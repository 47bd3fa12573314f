#!/usr/bin/env bash
# Checks the running stack: each service's health and readiness, every Prometheus target up, Alertmanager
# reaching the bridge, the bridge's queue not stuck. One line per check; exits 1 if any check fails.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/health-check.sh [options]

  --prometheus-url URL     (env PROMETHEUS_URL,   default http://127.0.0.1:9090)
  --alertmanager-url URL   (env ALERTMANAGER_URL, default http://127.0.0.1:9093)
  --grafana-url URL        (env GRAFANA_URL,      default http://127.0.0.1:3000)
  --exporter-url URL       (env EXPORTER_URL,     default http://127.0.0.1:9470)
  --bridge-url URL         (env BRIDGE_URL,       default http://127.0.0.1:9095)
  --skip NAMES             comma-separated services not to check: prometheus, alertmanager, grafana,
                           exporter, bridge (env HEALTH_SKIP)
  --max-pending-age SECS   oldest pending bridge delivery still healthy (env MAX_PENDING_AGE, default 600)
  --timeout SECS           per request (env HEALTH_TIMEOUT, default 5)

Works against any URLs, with or without Docker. Output: "OK   <check>", "FAIL <check>: <why>", or
"WARN <check>: <why>" for what does not fail the check (no fallback receiver configured).
EOF
}

prometheus_url=${PROMETHEUS_URL:-http://127.0.0.1:9090}
alertmanager_url=${ALERTMANAGER_URL:-http://127.0.0.1:9093}
grafana_url=${GRAFANA_URL:-http://127.0.0.1:3000}
exporter_url=${EXPORTER_URL:-http://127.0.0.1:9470}
bridge_url=${BRIDGE_URL:-http://127.0.0.1:9095}
skip=${HEALTH_SKIP:-}
max_pending_age=${MAX_PENDING_AGE:-600}
timeout=${HEALTH_TIMEOUT:-5}
while [[ $# -gt 0 ]]; do
  case $1 in
    --prometheus-url) prometheus_url=${2:?}; shift 2 ;;
    --alertmanager-url) alertmanager_url=${2:?}; shift 2 ;;
    --grafana-url) grafana_url=${2:?}; shift 2 ;;
    --exporter-url) exporter_url=${2:?}; shift 2 ;;
    --bridge-url) bridge_url=${2:?}; shift 2 ;;
    --skip) skip=${2?}; shift 2 ;;
    --max-pending-age) max_pending_age=${2:?}; shift 2 ;;
    --timeout) timeout=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "health-check: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

failures=0
ok() { printf 'OK   %s\n' "$1"; }
fail() { printf 'FAIL %s: %s\n' "$1" "$2"; failures=$((failures + 1)); }
# Not a failure, but something the operator should know.
warn() { printf 'WARN %s: %s\n' "$1" "$2"; }
skipped() { [[ ",$skip," == *",$1,"* ]]; }

# GET url: prints the body; fails with a short reason (never the URL's credentials or the body's secrets).
fetch() {
  curl -fsS --max-time "$timeout" "$1" 2>&1
}

check_http() {
  local name=$1 url=$2 out
  if out=$(fetch "$url"); then ok "$name"; else fail "$name" "${out:-no answer}"; fi
}

# Runs a PromQL instant query; prints "value" lines (one per series, "label=value ... value").
prom_query() {
  local body
  body=$(curl -fsS --max-time "$timeout" --get --data-urlencode "query=$1" "$prometheus_url/api/v1/query" 2>/dev/null) || return 1
  python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in d["data"]["result"]:
    labels = " ".join(f"{k}={v}" for k, v in sorted(r["metric"].items()))
    print(labels, r["value"][1])
' <<<"$body"
}

if ! skipped prometheus; then
  check_http "prometheus healthy" "$prometheus_url/-/healthy"
  check_http "prometheus ready" "$prometheus_url/-/ready"
  if targets=$(fetch "$prometheus_url/api/v1/targets?state=active"); then
    down=$(python3 -c '
import json, sys
d = json.load(sys.stdin)
t = d["data"]["activeTargets"]
bad = ["%s %s (%s: %s)" % (x["labels"].get("job"), x["labels"].get("instance"), x["health"],
                          x.get("lastError") or "not scraped yet") for x in t if x["health"] != "up"]
print("; ".join(bad) if bad else ("" if t else "no targets"))
' <<<"$targets")
    if [[ -z $down ]]; then ok "prometheus targets all up"; else fail "prometheus targets all up" "$down"; fi
  else
    fail "prometheus targets all up" "${targets:-no answer}"
  fi
fi

if ! skipped alertmanager; then
  check_http "alertmanager healthy" "$alertmanager_url/-/healthy"
  check_http "alertmanager ready" "$alertmanager_url/-/ready"
  # The receiver for alerts about the alert path (AlertBridgeDown ...), around the bridge: has it anywhere to send?
  name="alertmanager fallback receiver"
  if status=$(fetch "$alertmanager_url/api/v2/status"); then
    integrations=$(python3 -c '
import json, re, sys
text = json.load(sys.stdin)["config"]["original"]
m = re.search(r"^- name: fallback\n((?:  .*\n?)*)", text, re.M)
print("missing" if m is None else ",".join(re.findall(r"^  (\w+)_configs:", m.group(1), re.M)))
' <<<"$status" 2>/dev/null) || integrations=missing
    if [[ $integrations == missing || -z $integrations ]]; then
      warn "$name" "none configured: alerts about the bridge itself can only go through the bridge (set FALLBACK_* in deploy/.env, run scripts/setup.sh, restart alertmanager)"
    else
      ok "$name ($integrations)"
    fi
  else
    fail "$name" "${status:-no answer}"
  fi
  # Alertmanager's own counters, as Prometheus scraped them: webhook (bridge) sends failing lately.
  if ! skipped prometheus; then
    name="alertmanager reaching the bridge"
    if failed=$(prom_query 'sum(increase(alertmanager_notifications_failed_total{integration="webhook"}[15m]))'); then
      value=${failed##* }
      if [[ -z $failed ]]; then
        ok "$name (no webhook notifications recorded yet)"
      elif python3 -c "import sys; sys.exit(0 if float('$value') < 0.5 else 1)"; then
        ok "$name"
      else
        fail "$name" "$value failed webhook notifications in 15m (see: docker compose logs alertmanager)"
      fi
    else
      fail "$name" "cannot query prometheus"
    fi
  fi
fi

if ! skipped grafana; then
  check_http "grafana healthy" "$grafana_url/api/health"
fi

if ! skipped exporter; then
  check_http "exporter healthy" "$exporter_url/healthz"
  check_http "exporter ready (proxy scraped recently)" "$exporter_url/readyz"
fi

if ! skipped bridge; then
  check_http "bridge healthy" "$bridge_url/healthz"
  check_http "bridge ready (outbox writable)" "$bridge_url/readyz"
  name="bridge queue not stuck"
  if metrics=$(fetch "$bridge_url/metrics"); then
    oldest=$(awk '/^alert_bridge_oldest_pending_age_seconds[{ ]/ { v = $NF + 0; if (v > m) m = v } END { print m + 0 }' <<<"$metrics")
    if awk -v a="$oldest" -v m="$max_pending_age" 'BEGIN { exit !(a <= m) }'; then
      ok "$name (oldest pending ${oldest}s)"
    else
      fail "$name" "oldest pending delivery is ${oldest}s old (> ${max_pending_age}s)"
    fi
  else
    fail "$name" "${metrics:-no answer}"
  fi
fi

if [[ $failures -gt 0 ]]; then
  echo "health-check: $failures check(s) failed"
  exit 1
fi
echo "health-check: all checks passed"
