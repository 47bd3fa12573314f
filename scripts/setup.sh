#!/usr/bin/env bash
# Prepares deploy/ for `docker compose up`: deploy/.env from deploy/env.example with every empty generated
# secret filled, the secret files in deploy/secrets/, deploy/config/ for the programs' files, and the
# Prometheus and Alertmanager configs rendered into deploy/rendered/ and validated. Run it again after
# every edit of deploy/.env: it rewrites the secret files and configs from it. A generated secret that
# exists (in .env or in its file) is never replaced.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/setup.sh [--deploy-dir DIR] [--proxy-token-file PATH] [--no-validate]

  --deploy-dir DIR          the deploy directory (default: deploy/ beside this script; env DEPLOY_DIR)
  --proxy-token-file PATH   read the LLM proxy's token from PATH (instead of LLM_PROXY_TOKEN)
  --no-validate             skip promtool/amtool/docker compose validation

Creates DIR/.env from DIR/env.example (once) and DIR/config/ (the files the sidecar and the bridge read,
mounted at /etc/llm-monitoring). Fills every empty generated secret (PROMETHEUS_BEARER_TOKEN,
BRIDGE_TOKEN, GRAFANA_ADMIN_PASSWORD) with a random value. Writes DIR/secrets/ from .env:
  exporter_token, bridge_token, llm_proxy_token   tokens (mode 640, group 65534: read by two services)
  slack_webhook_url, slack_bot_token, discord_webhook_url, teams_webhook_url, webhook_url, smtp_password
                                                  the bridge's (mode 600, owner 10001); empty: unset
  grafana_admin_password                          Grafana's (mode 600, owner 472)
  fallback_smtp_password                          Alertmanager's (mode 600, owner 65534)
Renders DIR/prometheus and DIR/alertmanager into DIR/rendered/ (runbook links from RUNBOOK_BASE_URL or
BRIDGE_PUBLIC_URL; fallback receiver from FALLBACK_*; Watchdog pings to WATCHDOG_URL), which Compose
mounts, and validates them with promtool and amtool when installed.

The proxy's token, first found wins: the environment's LLM_PROXY_TOKEN, --proxy-token-file, LLM_PROXY_TOKEN
in .env, the token an earlier --proxy-token-file (or environment) wrote. With none, the demo simulator
(LLM_PROXY_URL at llm-proxy-sim) gets a generated token; a real proxy gets none, with a warning.
To change a token later: edit deploy/.env, run scripts/setup.sh, restart the one service
(docker compose -f deploy/docker-compose.yml up -d --force-recreate llm-exporter).
EOF
}

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
deploy_dir=${DEPLOY_DIR:-$repo/deploy}
validate=1
proxy_token_file=
while [[ $# -gt 0 ]]; do
  case $1 in
    --deploy-dir) deploy_dir=${2:?--deploy-dir needs a value}; shift 2 ;;
    --proxy-token-file) proxy_token_file=${2:?--proxy-token-file needs a path}; shift 2 ;;
    --no-validate) validate=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

env_file=$deploy_dir/.env
example=$deploy_dir/env.example
secrets_dir=$deploy_dir/secrets
rendered=$deploy_dir/rendered
[[ -f $example ]] || { echo "setup: $example not found" >&2; exit 1; }
if [[ -n $proxy_token_file && -n ${LLM_PROXY_TOKEN:-} ]]; then
  echo "setup: LLM_PROXY_TOKEN is set in the environment and --proxy-token-file is given: use only one" >&2
  exit 2
fi
if [[ -n $proxy_token_file && ! -s $proxy_token_file ]]; then
  echo "setup: --proxy-token-file: $proxy_token_file does not exist or is empty" >&2
  exit 2
fi

random_secret() {
  if command -v openssl >/dev/null; then
    openssl rand -hex 24
  else
    python3 -c 'import secrets; print(secrets.token_hex(24))'
  fi
}

# Value of KEY in .env (last assignment wins, as in Compose); empty when unset.
env_get() {
  sed -n "s/^$1=//p" "$env_file" | tail -n 1
}

# KEY as Compose sees it: the environment wins over .env.
setting() {
  local key=$1
  if [[ -n ${!key:-} ]]; then printf '%s' "${!key}"; else env_get "$key"; fi
}

# Sets KEY=VALUE in .env in place (or appends it), without echoing the value anywhere.
env_set() {
  local key=$1 value=$2 tmp
  tmp=$(mktemp "$env_file.XXXXXX")
  if grep -q "^$key=" "$env_file"; then
    KEY=$key VALUE=$value awk 'BEGIN { k = ENVIRON["KEY"] "=" } index($0, k) == 1 { print k ENVIRON["VALUE"]; next } { print }' \
      "$env_file" > "$tmp"
  else
    cat "$env_file" > "$tmp"
    printf '%s=%s\n' "$key" "$value" >> "$tmp"
  fi
  chmod 600 "$tmp"
  mv "$tmp" "$env_file"
}

# Writes a secret file only when its content changes (no value is ever printed).
write_secret() {
  local name=$1 value=$2 file=$secrets_dir/$1
  if [[ ! -f $file || $(cat "$file") != "$value" ]]; then
    printf '%s' "$value" > "$file"
    echo "setup: secrets/$name written"
  fi
}

umask 077
if [[ -f $env_file ]]; then
  echo "setup: keeping existing $env_file"
else
  cp "$example" "$env_file"
  chmod 600 "$env_file"
  echo "setup: created $env_file from env.example"
fi
mkdir -p "$secrets_dir" "$deploy_dir/config"
chmod 755 "$deploy_dir/config"

# Generated secrets: .env key -> secret file.
declare -A token_files=([PROMETHEUS_BEARER_TOKEN]=exporter_token [BRIDGE_TOKEN]=bridge_token)
for key in PROMETHEUS_BEARER_TOKEN BRIDGE_TOKEN; do
  file=$secrets_dir/${token_files[$key]}
  value=$(env_get "$key")
  if [[ -z $value && -s $file ]]; then
    # A token file from an earlier run (or put there by hand) is the secret: adopt it.
    value=$(cat "$file")
    env_set "$key" "$value"
    echo "setup: $key taken from secrets/${token_files[$key]}"
  elif [[ -z $value ]]; then
    value=$(random_secret)
    env_set "$key" "$value"
    echo "setup: $key generated"
  fi
  write_secret "${token_files[$key]}" "$value"
done
if [[ -z $(env_get GRAFANA_ADMIN_PASSWORD) ]]; then
  env_set GRAFANA_ADMIN_PASSWORD "$(random_secret)"
  echo "setup: GRAFANA_ADMIN_PASSWORD generated (read it in $env_file)"
fi
write_secret grafana_admin_password "$(env_get GRAFANA_ADMIN_PASSWORD)"

# The proxy's token. A generated one is marked, so that it is never sent to a real proxy.
proxy_file=$secrets_dir/llm_proxy_token
generated_mark=$secrets_dir/.llm_proxy_token.generated
proxy_url=$(setting LLM_PROXY_URL)
proxy_url=${proxy_url:-http://llm-proxy-sim:8000/metrics}
if [[ -n ${LLM_PROXY_TOKEN:-} ]]; then
  source="from the environment"; token=$LLM_PROXY_TOKEN
elif [[ -n $proxy_token_file ]]; then
  source="from --proxy-token-file"; token=$(tr -d '\r\n' < "$proxy_token_file")
elif [[ -n $(env_get LLM_PROXY_TOKEN) ]]; then
  source="from LLM_PROXY_TOKEN in .env"; token=$(env_get LLM_PROXY_TOKEN)
elif [[ -s $proxy_file && ! -e $generated_mark ]]; then
  source="kept from the earlier run"; token=$(cat "$proxy_file")
elif [[ $proxy_url == *//llm-proxy-sim:* ]]; then
  if [[ -s $proxy_file && -e $generated_mark ]]; then token=$(cat "$proxy_file"); else token=$(random_secret); fi
  source="generated for the demo simulator"
else
  source=none; token=
fi
if [[ $source == "generated for the demo simulator" ]]; then touch "$generated_mark"; else rm -f "$generated_mark"; fi
write_secret llm_proxy_token "$token"
if [[ $source == none ]]; then
  echo "setup: warning: no LLM_PROXY_TOKEN for the proxy at LLM_PROXY_URL: the sidecar sends none." \
    "Set LLM_PROXY_TOKEN in $env_file (or use --proxy-token-file) and run setup.sh again" >&2
else
  echo "setup: LLM proxy token $source"
fi

# The bridge's channel secrets and the fallback's SMTP password, from .env; an empty file means unset.
for key in SLACK_WEBHOOK_URL SLACK_BOT_TOKEN DISCORD_WEBHOOK_URL TEAMS_WEBHOOK_URL WEBHOOK_URL SMTP_PASSWORD FALLBACK_SMTP_PASSWORD; do
  write_secret "$(tr '[:upper:]' '[:lower:]' <<<"$key")" "$(env_get "$key")"
done

# Prometheus's rules and Alertmanager's config, with the settings they cannot read from the environment.
render_args=(--deploy-dir "$deploy_dir" --out "$rendered")
[[ -s $secrets_dir/fallback_smtp_password ]] && render_args+=(--password-file)
render_env=()
for key in RUNBOOK_BASE_URL BRIDGE_PUBLIC_URL WATCHDOG_URL FALLBACK_WEBHOOK_URL FALLBACK_EMAIL_TO FALLBACK_EMAIL_FROM \
  FALLBACK_SMTP_SMARTHOST FALLBACK_SMTP_USERNAME FALLBACK_SMTP_REQUIRE_TLS; do
  render_env+=("$key=$(setting "$key")")
done
if ! out=$(env "${render_env[@]}" PYTHONPATH="$repo" python3 -m stack.render "${render_args[@]}" 2>&1); then
  echo "setup: $out (in $env_file)" >&2
  exit 2
fi
echo "setup: configs rendered into $rendered (prometheus/, alertmanager/)"
if [[ $out == fallback=none ]]; then
  echo "setup: warning: no fallback receiver: alerts about the alert path (AlertBridgeDown ...) can only go" \
    "through the bridge. Set FALLBACK_EMAIL_TO (with FALLBACK_EMAIL_FROM, FALLBACK_SMTP_SMARTHOST) or" \
    "FALLBACK_WEBHOOK_URL in $env_file and run setup.sh again" >&2
else
  echo "setup: fallback receiver: ${out#fallback=}"
fi
[[ -n $(setting WATCHDOG_URL) ]] || echo "setup: note: WATCHDOG_URL is empty: nothing watches for the Watchdog alert"

# Who reads what: the project image runs as uid 10001 (group 65534), Prometheus and Alertmanager as nobody
# (65534), Grafana as 472. Tokens read by two services are group-readable by 65534; the others belong to
# their one reader, mode 600. Without the right to chown, fall back to world-readable files in a directory
# only the owner can list.
declare -A owner=(
  [slack_webhook_url]=10001 [slack_bot_token]=10001 [discord_webhook_url]=10001 [teams_webhook_url]=10001 [webhook_url]=10001
  [smtp_password]=10001 [grafana_admin_password]=472 [fallback_smtp_password]=65534
)
find "$rendered" -type d -exec chmod 755 {} + && find "$rendered" -type f -exec chmod 644 {} +
if chgrp 65534 "$secrets_dir" "$secrets_dir"/* "$rendered/alertmanager/alertmanager.yml" 2>/dev/null; then
  chmod 750 "$secrets_dir"
  for file in "$secrets_dir"/*; do
    name=$(basename "$file")
    if [[ -n ${owner[$name]:-} ]]; then
      chown "${owner[$name]}" "$file"
      chmod 600 "$file"
    else
      chmod 640 "$file"
    fi
  done
  # It may hold a webhook URL with a token in it (FALLBACK_WEBHOOK_URL, WATCHDOG_URL).
  chmod 640 "$rendered/alertmanager/alertmanager.yml"
else
  chmod 711 "$secrets_dir"
  chmod 644 "$secrets_dir"/*
  echo "setup: warning: could not give the secret files to their readers (run as root to do so); made them world-readable" >&2
fi

# Checks one config the way its server sees it: a copy of its directory with the secrets mounted beside,
# since the configs name secrets/<token> relative to their own directory (as under Compose).
check_config() {
  local name=$1 dir=$2 file=$3; shift 3
  local work log
  work=$(mktemp -d)
  log=$work/check.log
  cp -R "$dir" "$work/conf"
  rm -rf "$work/conf/secrets"
  cp -R "$secrets_dir" "$work/conf/secrets"
  if "$@" "$work/conf/$file" >"$log" 2>&1; then
    echo "setup: $name config OK"
  else
    echo "setup: $name config INVALID ($dir/$file):" >&2
    cat "$log" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$work"
}

if [[ $validate == 1 ]]; then
  failed=0
  if command -v promtool >/dev/null; then
    check_config prometheus "$rendered/prometheus" prometheus.yml promtool check config || failed=1
  else
    echo "setup: promtool not installed: prometheus config not checked"
  fi
  if command -v amtool >/dev/null; then
    check_config alertmanager "$rendered/alertmanager" alertmanager.yml amtool check-config || failed=1
  else
    echo "setup: amtool not installed: alertmanager config not checked"
  fi
  if command -v docker >/dev/null && docker compose version >/dev/null 2>&1; then
    if docker compose -f "$deploy_dir/docker-compose.yml" --env-file "$env_file" config -q; then
      echo "setup: docker-compose.yml OK"
    else
      echo "setup: docker-compose.yml INVALID" >&2; failed=1
    fi
  fi
  [[ $failed == 0 ]] || exit 1
fi
echo "setup: done. Next: docker compose -f $deploy_dir/docker-compose.yml up -d" \
  "(after editing $env_file later: run setup.sh again, then restart the services concerned)"
