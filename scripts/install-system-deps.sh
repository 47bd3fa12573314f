#!/usr/bin/env bash
# Installs Debian's prometheus and prometheus-alertmanager (with promtool and amtool) without letting the
# packages start system services. Does nothing when the binaries are already there.
set -euo pipefail
usage() {
  cat <<'EOF_USAGE'
Usage: scripts/install-system-deps.sh [--help]

Installs Debian's prometheus and prometheus-alertmanager packages (which bring promtool and amtool) with
apt-get, as root, without starting their system services. Does nothing when all four binaries are on PATH.
Used by `make venv` / `make test` / `make demo`.
EOF_USAGE
}
case "${1:-}" in
  "") ;;
  -h|--help) usage; exit 0 ;;
  *) echo "install-system-deps: unknown argument: $1 (see --help)" >&2; exit 2 ;;
esac
need=0
for bin in prometheus promtool prometheus-alertmanager amtool; do
  command -v "$bin" >/dev/null || need=1
done
[[ $need == 0 ]] && exit 0
if [[ $(id -u) != 0 ]]; then
  echo "install-system-deps: need root to apt-get install prometheus prometheus-alertmanager" >&2
  exit 1
fi
# invoke-rc.d asks policy-rc.d; 101 means "action forbidden", so no service starts.
policy=/usr/sbin/policy-rc.d
rc=0
if [[ -x $policy ]]; then "$policy" >/dev/null 2>&1 || rc=$?; fi
if [[ $rc != 101 ]]; then
  [[ -e $policy ]] && cp -p "$policy" "$policy.llm-monitoring.bak"
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod +x "$policy"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus prometheus-alertmanager >/dev/null
echo "install-system-deps: installed $(prometheus --version 2>&1 | head -1)"
