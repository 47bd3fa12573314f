#!/usr/bin/env bash
# Prepares deploy/ for `docker compose up`: deploy/.env from deploy/env.example with every empty secret
# generated, the token files in deploy/secrets/, and the configs validated. Safe to run again: a secret
# that exists (in .env or in its token file) is never replaced.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/setup.sh [--deploy-dir DIR] [--no-validate]

  --deploy-dir DIR   the deploy directory (default: deploy/ beside this script; env DEPLOY_DIR)
  --no-validate      skip promtool/amtool/docker compose validation

Creates DIR/.env from DIR/env.example (once), fills every empty secret
(PROMETHEUS_BEARER_TOKEN, BRIDGE_TOKEN, LLM_PROXY_TOKEN, GRAFANA_ADMIN_PASSWORD) with a random value,
writes DIR/secrets/{exporter_token,bridge_token,llm_proxy_token} from them, and validates the
Prometheus and Alertmanager configs with promtool and amtool when they are installed.
EOF
}

deploy_dir=${DEPLOY_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../deploy" && pwd)}
validate=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --deploy-dir) deploy_dir=${2:?--deploy-dir needs a value}; shift 2 ;;
    --no-validate) validate=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done

env_file=$deploy_dir/.env
example=$deploy_dir/env.example
secrets_dir=$deploy_dir/secrets
[[ -f $example ]] || { echo "setup: $example not found" >&2; exit 1; }

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

umask 077
if [[ -f $env_file ]]; then
  echo "setup: keeping existing $env_file"
else
  cp "$example" "$env_file"
  chmod 600 "$env_file"
  echo "setup: created $env_file from env.example"
fi
mkdir -p "$secrets_dir"

# .env key -> token file the configs and containers read.
declare -A token_files=(
  [PROMETHEUS_BEARER_TOKEN]=exporter_token
  [BRIDGE_TOKEN]=bridge_token
  [LLM_PROXY_TOKEN]=llm_proxy_token
)
for key in PROMETHEUS_BEARER_TOKEN BRIDGE_TOKEN LLM_PROXY_TOKEN; do
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
  if [[ ! -s $file || $(cat "$file") != "$value" ]]; then
    [[ -s $file ]] && echo "setup: secrets/${token_files[$key]} updated from $key in .env"
    printf '%s' "$value" > "$file"
  fi
  echo "setup: secrets/${token_files[$key]} ready"
done
# The Slack bot token is the operator's to set, never generated: written from .env as it is (an empty file
# means no bot), and a file put there by hand is kept while .env leaves it empty.
slack_bot_token=$(env_get SLACK_BOT_TOKEN)
if [[ -n $slack_bot_token || ! -f $secrets_dir/slack_bot_token ]]; then
  printf '%s' "$slack_bot_token" > "$secrets_dir/slack_bot_token"
fi
echo "setup: secrets/slack_bot_token ready"
if [[ -z $(env_get GRAFANA_ADMIN_PASSWORD) ]]; then
  env_set GRAFANA_ADMIN_PASSWORD "$(random_secret)"
  echo "setup: GRAFANA_ADMIN_PASSWORD generated (read it in $env_file)"
fi

# Containers read the token files as uid 10001 (project image) or nobody (Prometheus, Alertmanager), all
# in group 65534: group-readable by it keeps them from other host users. Without the right to chgrp,
# fall back to world-readable files in a directory only the owner can list.
if chgrp 65534 "$secrets_dir" "$secrets_dir"/* 2>/dev/null; then
  chmod 750 "$secrets_dir"
  chmod 640 "$secrets_dir"/*
else
  chmod 711 "$secrets_dir"
  chmod 644 "$secrets_dir"/*
  echo "setup: warning: could not give the token files to group 65534 (run as root to do so); made them world-readable" >&2
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
  if command -v promtool >/dev/null && [[ -f $deploy_dir/prometheus/prometheus.yml ]]; then
    check_config prometheus "$deploy_dir/prometheus" prometheus.yml promtool check config || failed=1
  else
    echo "setup: promtool not installed: prometheus config not checked"
  fi
  if command -v amtool >/dev/null && [[ -f $deploy_dir/alertmanager/alertmanager.yml ]]; then
    check_config alertmanager "$deploy_dir/alertmanager" alertmanager.yml amtool check-config || failed=1
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
echo "setup: done. Next: edit $env_file (LLM_PROXY_URL, channels), then docker compose -f $deploy_dir/docker-compose.yml up -d"
