#!/usr/bin/env bash
# Entrypoint of the Superset container: the idempotent start-up steps (docker/init.sh), then the web
# server. Runs as the unprivileged user `superset` (the image's USER).
set -euo pipefail

started=$(date +%s)
"$(dirname "$0")/init.sh"
echo "[superset-start] start-up steps took $(($(date +%s) - started))s; starting gunicorn" >&2

# Inside the container the server listens on all interfaces of the container; the host side is
# published on ${SUPERSET_BIND:-127.0.0.1}:${SUPERSET_PORT:-8088} by docker-compose.yml.
exec gunicorn \
  --bind "0.0.0.0:${SUPERSET_CONTAINER_PORT:-8088}" \
  --workers "${SUPERSET_WORKERS:-2}" \
  --worker-class gthread \
  --threads "${SUPERSET_THREADS:-8}" \
  --timeout "${SUPERSET_GUNICORN_TIMEOUT:-120}" \
  --limit-request-line 0 \
  --limit-request-field_size 0 \
  --access-logfile - \
  --error-logfile - \
  "superset.app:create_app()"
