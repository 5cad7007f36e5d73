#!/usr/bin/env bash
# Superset's part of the whole-stack end-to-end check: the hooks ci/ calls on a running compose
# project. Every hook prints a JSON report to $ARTIFACTS/superset-<hook>.json and exits non-zero
# on failure.
#
#   export SS_COMPOSE="docker compose -p <project> --env-file <env file>"   (how to reach the stack)
#   stack_checks.sh wait        ARTIFACTS   # superset service healthy (time printed)
#   stack_checks.sh wait-snapshot ARTIFACTS [SECONDS]  # the pipeline published taxi.duckdb
#   stack_checks.sh verify      ARTIFACTS   # health, API login, dashboards listed, every chart's
#                                           # data == direct query on the published snapshot,
#                                           # read-only / no file access probes
#   stack_checks.sh screenshots ARTIFACTS   # headless Chromium PNG of every dashboard, non-blank
#   stack_checks.sh load-start  ARTIFACTS   # start querying every chart's data in a loop ...
#   stack_checks.sh load-stop   ARTIFACTS   # ... stop; fails if any chart query failed
#
# The typical sequence in the stack's e2e: wait -> (first pipeline run) -> wait-snapshot ->
# load-start -> (launch another pipeline run that writes the warehouse, wait for it) -> load-stop
# -> verify -> screenshots. Before the first publication every chart fails by design (no file).
# SUPERSET_ADMIN_PASSWORD is read from the env file of SS_COMPOSE when not set. Python: SS_PYTHON,
# else superset/.venv, else user_code/.venv, else python3 (needs PyYAML; duckdb is not needed: the
# direct queries run inside the superset container, which mounts the snapshot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
hook=${1:?usage: stack_checks.sh wait|verify|screenshots|load-start|load-stop ARTIFACTS}
artifacts=${2:?artifacts directory}
mkdir -p "$artifacts"
: "${SS_COMPOSE:?set SS_COMPOSE, e.g. \"docker compose -p taxi-e2e --env-file ci/.e2e.env\"}"
read -r -a compose <<<"$SS_COMPOSE"

if [[ -z ${SS_PYTHON:-} ]]; then
  for candidate in "$repo/superset/.venv/bin/python" "$repo/user_code/.venv/bin/python" python3; do
    if "$candidate" -c "import yaml" >/dev/null 2>&1; then SS_PYTHON=$candidate; break; fi
  done
fi
: "${SS_PYTHON:?no Python with PyYAML found (set SS_PYTHON)}"

if [[ -z ${SUPERSET_ADMIN_PASSWORD:-} ]]; then
  env_file=""
  for ((i = 0; i < ${#compose[@]}; i++)); do
    [[ ${compose[$i]} == --env-file ]] && env_file=${compose[$((i + 1))]}
  done
  env_file=${env_file:-$repo/.env}
  SUPERSET_ADMIN_PASSWORD=$(sed -n 's/^SUPERSET_ADMIN_PASSWORD=//p' "$env_file" | tail -n 1)
fi
export SUPERSET_ADMIN_PASSWORD
: "${SUPERSET_ADMIN_PASSWORD:?SUPERSET_ADMIN_PASSWORD not set and not found in the env file}"

container() { "${compose[@]}" ps -q superset; }
url() {
  local hostport
  hostport=$("${compose[@]}" port superset 8088 | head -n 1)
  echo "http://${hostport/0.0.0.0/127.0.0.1}"
}
checks() { "$SS_PYTHON" "$here/superset_checks.py" "$@"; }

case $hook in
  wait)
    started=$(date +%s)
    for _ in $(seq 1 200); do
      id=$(container)
      if [[ -n $id ]]; then
        status=$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id")
        [[ $status == healthy ]] && { echo "superset healthy after $(( $(date +%s) - started ))s"; exit 0; }
        [[ $status == unhealthy ]] && break
      fi
      sleep 3
    done
    echo "superset not healthy" >&2
    "${compose[@]}" logs --tail 100 superset superset-db-init >&2 || true
    exit 1
    ;;
  wait-snapshot)
    limit=${3:-900}
    started=$(date +%s)
    until docker exec "$(container)" test -s /published/taxi.duckdb; do
      (( $(date +%s) - started > limit )) && { echo "no snapshot published after ${limit}s" >&2; exit 1; }
      sleep 5
    done
    echo "snapshot published (waited $(( $(date +%s) - started ))s)"
    ;;
  verify)
    checks verify --url "$(url)" --duckdb-container "$(container)" \
      --report "$artifacts/superset-verify.json" >/dev/null \
      || { cat "$artifacts/superset-verify.json" >&2; exit 1; }
    echo "superset verify: ok ($artifacts/superset-verify.json)"
    ;;
  screenshots)
    checks screenshots --url "$(url)" --out "$artifacts/screenshots" \
      --report "$artifacts/superset-screenshots.json" >/dev/null \
      || { cat "$artifacts/superset-screenshots.json" >&2; exit 1; }
    ls -1 "$artifacts"/screenshots/dashboard-*.png
    ;;
  load-start)
    rm -f "$artifacts/superset-load.stop" "$artifacts/superset-load.json"
    nohup "$SS_PYTHON" "$here/superset_checks.py" load --url "$(url)" \
      --stop-file "$artifacts/superset-load.stop" --pause 0.2 \
      --report "$artifacts/superset-load.json" >"$artifacts/superset-load.out" 2>&1 &
    echo $! >"$artifacts/superset-load.pid"
    echo "chart-query load started (pid $!)"
    ;;
  load-stop)
    touch "$artifacts/superset-load.stop"
    pid=$(cat "$artifacts/superset-load.pid")
    for _ in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    "$SS_PYTHON" - "$artifacts/superset-load.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"chart queries while the pipeline wrote: {r.get('requests')} made, {r.get('errors')} failed"
      f" in {r.get('seconds')}s (latency {r.get('latency_ms')})")
for s in r.get("error_samples", []):
    print("  ", s)
sys.exit(0 if r.get("ok") else 1)
EOF
    ;;
  *)
    echo "unknown hook $hook" >&2
    exit 2
    ;;
esac
