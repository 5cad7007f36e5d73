#!/usr/bin/env bash
# Stand-alone container check of the Superset image, without the rest of the stack:
# a throwaway PostgreSQL, the metadata-db init, Superset over a DuckDB snapshot generated here
# (superset/tests/make_snapshot.py, the contract's mart schema), then
#   1. first start with no snapshot yet (the pipeline has not published): healthy, dashboards listed
#   2. a snapshot appears: every chart's data equals the direct query (superset_checks.py verify),
#      and SQL Lab / chart queries cannot write, attach or read files
#   3. os.replace of the snapshot while Superset runs, under chart-query load: new data seen, 0 errors
#   4. `docker restart` and a fresh container on the same metadata database: nothing duplicated
#   5. headless Chromium screenshots of every dashboard (superset_checks.py screenshots)
#
#   superset/tests/e2e/standalone.sh            (needs docker; PYTHON_BASE_IMAGE / POSTGRES_IMAGE)
#
# Containers and the network are named sshelper-* (SS_PREFIX) and removed at the end; Superset is
# published on an ephemeral 127.0.0.1 port. Artifacts (reports, screenshots, logs) go to
# $SS_ARTIFACTS (default superset/tests/e2e/artifacts).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
superset_dir=$(cd "$here/../.." && pwd)
prefix=${SS_PREFIX:-sshelper}
image=${SS_IMAGE:-taxi-superset:e2e}
artifacts=${SS_ARTIFACTS:-$here/artifacts}
python=${SS_PYTHON:-$superset_dir/.venv/bin/python}
postgres_image=${POSTGRES_IMAGE:-postgres:15}
mkdir -p "$artifacts"
publish=$(mktemp -d "/tmp/${prefix}-published.XXXXXX")
chmod 755 "$publish"

phase_started=$(date +%s)
phase() { local now; now=$(date +%s); echo "=== [$((now - phase_started))s] $*" >&2; }
fail() { echo "FAILED: $*" >&2; docker logs --tail 80 "$prefix-superset" >&2 || true; exit 1; }
cleanup() {
  docker logs "$prefix-superset" >"$artifacts/superset.log" 2>&1 || true
  docker rm -f "$prefix-superset" "$prefix-pg" >/dev/null 2>&1 || true
  docker network rm "$prefix-net" >/dev/null 2>&1 || true
  rm -rf "$publish"
}
trap cleanup EXIT

export SUPERSET_ADMIN_PASSWORD=${SUPERSET_ADMIN_PASSWORD:-$(openssl rand -hex 16)}
secret_key=$(openssl rand -base64 42)
db_password=$(openssl rand -hex 16)
pg_password=$(openssl rand -hex 16)

phase "build $image"
t0=$(date +%s)
docker build -q --build-arg "PYTHON_BASE_IMAGE=${PYTHON_BASE_IMAGE:-python:3.11-slim}" -t "$image" "$superset_dir" >/dev/null
echo "build: $(( $(date +%s) - t0 ))s, image size: $(docker image inspect -f '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}')" | tee "$artifacts/build.txt"

phase "postgres + metadata database (twice: idempotent)"
docker rm -f "$prefix-superset" "$prefix-pg" >/dev/null 2>&1 || true
docker network rm "$prefix-net" >/dev/null 2>&1 || true
docker network create "$prefix-net" >/dev/null
docker run -d --name "$prefix-pg" --network "$prefix-net" -e POSTGRES_USER=platform \
  -e POSTGRES_PASSWORD="$pg_password" -e POSTGRES_DB=dagster "$postgres_image" postgres >/dev/null
for _ in 1 2; do
  docker run --rm --network "$prefix-net" -e PGHOST="$prefix-pg" -e PGUSER=platform \
    -e PGPASSWORD="$pg_password" -e SUPERSET_DB_PASSWORD="$db_password" "$image" \
    python /app/docker/create_metadata_db.py
done

start_superset() {
  docker run -d --name "$prefix-superset" --network "$prefix-net" -p 127.0.0.1::8088 \
    -e SUPERSET_SECRET_KEY="$secret_key" -e SUPERSET_DB_HOST="$prefix-pg" \
    -e SUPERSET_DB_PASSWORD="$db_password" -e SUPERSET_ADMIN_PASSWORD \
    -v "$publish:/published:ro" "$image" >/dev/null
}
wait_healthy() {  # prints seconds until the container's healthcheck passes
  local t0; t0=$(date +%s)
  for _ in $(seq 1 150); do
    case $(docker inspect -f '{{.State.Health.Status}}' "$prefix-superset") in
      healthy) echo $(( $(date +%s) - t0 )); return 0 ;;
      unhealthy) fail "superset unhealthy" ;;
    esac
    [[ $(docker inspect -f '{{.State.Running}}' "$prefix-superset") == true ]] || fail "superset exited"
    sleep 2
  done
  fail "superset not healthy after 300s"
}
url() { echo "http://127.0.0.1:$(docker port "$prefix-superset" 8088 | head -n1 | cut -d: -f2)"; }
checks() { "$python" "$here/superset_checks.py" "$@"; }
# the screenshots need Playwright: the end-to-end harness's environment (ci/pyproject.toml) has it
shots() { uv run --frozen --project "$superset_dir/../ci" python "$here/superset_checks.py" "$@"; }

phase "1. first start, no snapshot published yet"
start_superset
secs=$(wait_healthy); echo "superset start (container start -> healthy, empty metadata db): ${secs}s" | tee "$artifacts/start-times.txt"
[[ $(curl -fsS "$(url)/health") == OK ]] || fail "/health"

phase "2. snapshot published: chart data == direct queries, security probes"
"$python" "$superset_dir/tests/make_snapshot.py" "$publish/taxi.duckdb" --seed 1 --days 31 >/dev/null
checks verify --url "$(url)" --duckdb "$publish/taxi.duckdb" --report "$artifacts/verify-1.json" >/dev/null \
  || { cat "$artifacts/verify-1.json"; fail "verify after first publish"; }

phase "3. os.replace of the snapshot under chart-query load"
checks load --url "$(url)" --stop-file "$publish/.stop" --pause 0.1 --report "$artifacts/load-replace.json" >/dev/null &
load_pid=$!
for seed in 2 3 4 5 6; do
  sleep 2
  "$python" "$superset_dir/tests/make_snapshot.py" "$publish/taxi.duckdb" --seed "$seed" --days $((20 + seed)) --start 2023-02-01 >/dev/null
done
sleep 2; touch "$publish/.stop"
wait "$load_pid" || { cat "$artifacts/load-replace.json"; fail "chart queries failed while the snapshot was replaced"; }
checks verify --url "$(url)" --duckdb "$publish/taxi.duckdb" --report "$artifacts/verify-2.json" >/dev/null \
  || { cat "$artifacts/verify-2.json"; fail "verify after os.replace"; }
rm -f "$publish/.stop"
"$python" - "$artifacts" <<'EOF'
import json, sys
r = json.load(open(f"{sys.argv[1]}/load-replace.json"))
days = [c["rows"] for c in json.load(open(f"{sys.argv[1]}/verify-2.json"))["charts"] if c["chart"] == "Daily trips"]
print(f"load during 5 replacements: {r['requests']} chart queries, {r['errors']} errors; daily rows now {days}")
EOF

phase "4. restart, then a new container on the same metadata database: nothing duplicated"
docker restart "$prefix-superset" >/dev/null
secs=$(wait_healthy); echo "superset restart -> healthy: ${secs}s" | tee -a "$artifacts/start-times.txt"
checks verify --url "$(url)" --duckdb "$publish/taxi.duckdb" --report "$artifacts/verify-3.json" >/dev/null \
  || { cat "$artifacts/verify-3.json"; fail "verify after restart"; }
docker rm -f "$prefix-superset" >/dev/null
start_superset
secs=$(wait_healthy); echo "new container, existing metadata db -> healthy: ${secs}s" | tee -a "$artifacts/start-times.txt"
checks verify --url "$(url)" --duckdb "$publish/taxi.duckdb" --report "$artifacts/verify-4.json" >/dev/null \
  || { cat "$artifacts/verify-4.json"; fail "verify after re-create"; }

phase "5. screenshots"
shots screenshots --url "$(url)" --out "$artifacts/screenshots" --report "$artifacts/screenshots.json" >/dev/null \
  || { cat "$artifacts/screenshots.json"; fail "screenshots"; }
ls -1 "$artifacts"/screenshots/*.png

phase "all Superset checks passed"
