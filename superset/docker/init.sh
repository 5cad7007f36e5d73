#!/usr/bin/env bash
# Brings Superset's metadata database up to date with Superset's own commands; docker/start.sh runs
# it at every start of the container, before the web server. Every step is idempotent:
#   1. superset db upgrade     migrations; like every `superset` command it loads superset_config.py,
#                              which stops naming any missing secret (SUPERSET_SECRET_KEY, ...)
#   2. superset init           roles and permissions (the Admin role the next step needs)
#   3. fab create-admin        the admin; when it exists, fab reset-password applies the current
#                              SUPERSET_ADMIN_PASSWORD (a password changed in .env takes effect)
#   4. import_dashboards.py    the dashboards bundle, with Superset's ImportAssetsCommand,
#                              overwriting the objects with its uuids
#   5. set-database-uri        the warehouse connection reads $SUPERSET_DUCKDB_PATH, read-only
# Environment: SUPERSET_ADMIN_USERNAME (admin), SUPERSET_ADMIN_EMAIL (<username>@example.com),
# SUPERSET_ADMIN_PASSWORD, SUPERSET_DASHBOARDS_DIR (/app/dashboards), SUPERSET_DUCKDB_PATH.
set -euo pipefail

admin=${SUPERSET_ADMIN_USERNAME:-admin}
dashboards=${SUPERSET_DASHBOARDS_DIR:-/app/dashboards}
# database_name of dashboards/databases/taxi_warehouse.yaml
warehouse="NYC taxi warehouse"

fail() {
  echo "[superset-init] $*" >&2
  exit 1
}

case ${SUPERSET_DUCKDB_PATH:-} in
  /*) ;;
  *) fail "SUPERSET_DUCKDB_PATH must be the absolute path of the published snapshot, got '${SUPERSET_DUCKDB_PATH:-}'" ;;
esac

# Runs `superset ARGS...`, copies its output to the log and keeps it in $out: some of Superset's
# and Flask-AppBuilder's commands report a failure in their output and still exit 0.
run() {
  echo "[superset-init] superset $*" >&2
  out=$(superset "$@" 2>&1) || {
    printf '%s\n' "$out" >&2
    fail "superset $* failed (output above)"
  }
  printf '%s\n' "$out" >&2
}

run db upgrade
run init

# Passwords go through the environment (Flask's CLI reads FLASK_<COMMAND>_<OPTION>), never on a
# command line that `ps` would show.
export FLASK_FAB_CREATE_ADMIN_PASSWORD=$SUPERSET_ADMIN_PASSWORD
export FLASK_FAB_RESET_PASSWORD_PASSWORD=$SUPERSET_ADMIN_PASSWORD
run fab create-admin --username "$admin" --firstname Superset --lastname Admin \
  --email "${SUPERSET_ADMIN_EMAIL:-$admin@example.com}"
case $out in
  *"Admin User $admin created."*) ;;
  *"User already exists"*)
    run fab reset-password --username "$admin"
    [[ $out == *"User $admin reseted."* ]] || fail "could not set the password of the admin '$admin'"
    ;;
  *) fail "could not create the admin '$admin'" ;;
esac
unset FLASK_FAB_CREATE_ADMIN_PASSWORD FLASK_FAB_RESET_PASSWORD_PASSWORD

# the bundle, overwriting by uuid (why not `superset import-directory`: see import_dashboards.py)
echo "[superset-init] python import_dashboards.py ($dashboards)" >&2
SUPERSET_DASHBOARDS_DIR=$dashboards python "$(dirname "$0")/import_dashboards.py"

# --skip_create: only ever update the bundle's connection, never add another one
run set-database-uri --skip_create --database_name "$warehouse" \
  --uri "duckdb:///$SUPERSET_DUCKDB_PATH?access_mode=read_only"
