"""Superset configuration of the NYC taxi platform (loaded through SUPERSET_CONFIG_PATH).

Every setting comes from the environment. The secrets have no defaults, and this file is their
one check inside the image: every `superset ...` command loads it (docker/init.sh starts with
`superset db upgrade`), so a missing one stops the container with a message naming it.

    SUPERSET_SECRET_KEY        required; signs sessions and encrypts stored database credentials
    SUPERSET_DB_PASSWORD       required; password of the metadata database user
    SUPERSET_ADMIN_PASSWORD    required; the admin's password, applied by docker/init.sh
    SUPERSET_DB_HOST           default postgres
    SUPERSET_DB_PORT           default 5432
    SUPERSET_DB_NAME           default superset
    SUPERSET_DB_USER           default superset
    SUPERSET_ROW_LIMIT         default 50000 (chart rows)
    SUPERSET_LOG_LEVEL         default INFO

The warehouse itself is not configured here but in the asset bundle (dashboards/databases/):
a read-only DuckDB connection to the published snapshot with external access disabled.
"""

from __future__ import annotations

import logging
import os
from urllib.parse import quote

_REQUIRED_ENV = {
    "SUPERSET_SECRET_KEY": "Superset's SECRET_KEY; generate one with `openssl rand -base64 42`",
    "SUPERSET_DB_PASSWORD": "password of Superset's metadata database user",
    "SUPERSET_ADMIN_PASSWORD": "password of the Superset admin user, applied at every start",
}
_missing = [name for name in _REQUIRED_ENV if not os.environ.get(name, "").strip()]
if _missing:
    # SystemExit is not swallowed by Superset's `except Exception` around the config import; its
    # message is printed on stderr and the command (or the container's start) stops.
    raise SystemExit(
        "superset_config: missing environment variable(s): "
        + "; ".join(f"{name} ({_REQUIRED_ENV[name]})" for name in _missing)
        + ". Set them in .env (see .env.example; `python3 ci/make_env.py` writes a complete one);"
        " they deliberately have no default."
    )

SECRET_KEY = os.environ["SUPERSET_SECRET_KEY"]
if len(SECRET_KEY) < 32:
    raise SystemExit(
        "superset_config: SUPERSET_SECRET_KEY is too short (at least 32 characters; "
        "generate one with `openssl rand -base64 42`, or `python3 ci/make_env.py`)"
    )

_db_password = os.environ["SUPERSET_DB_PASSWORD"]
_db_user = os.environ.get("SUPERSET_DB_USER", "superset")
_db_host = os.environ.get("SUPERSET_DB_HOST", "postgres")
_db_port = os.environ.get("SUPERSET_DB_PORT", "5432")
_db_name = os.environ.get("SUPERSET_DB_NAME", "superset")
SQLALCHEMY_DATABASE_URI = (
    f"postgresql+psycopg2://{quote(_db_user, safe='')}:{quote(_db_password, safe='')}"
    f"@{_db_host}:{_db_port}/{quote(_db_name, safe='')}"
)
# a metadata database that went away must not hang a worker forever
SQLALCHEMY_ENGINE_OPTIONS = {
    "pool_pre_ping": True,
    "connect_args": {"connect_timeout": 10},
}

# --- caching -------------------------------------------------------------------------------------
# No chart-data cache: every chart query reads the current snapshot, so a snapshot the pipeline
# publishes (os.replace) shows up on the next refresh. The queries over the marts are small.
CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
DATA_CACHE_CONFIG = {"CACHE_TYPE": "NullCache"}
# in-memory rate-limit storage (no Redis in this stack); silences the start-up warning
RATELIMIT_STORAGE_URI = "memory://"

# --- behaviour -----------------------------------------------------------------------------------
ROW_LIMIT = int(os.environ.get("SUPERSET_ROW_LIMIT", "50000"))
SQL_MAX_ROW = 100000
SQLLAB_TIMEOUT = 60
SUPERSET_WEBSERVER_TIMEOUT = 120
LOG_LEVEL = getattr(logging, os.environ.get("SUPERSET_LOG_LEVEL", "INFO").upper(), logging.INFO)

FEATURE_FLAGS = {
    "ENABLE_TEMPLATE_PROCESSING": False,  # no Jinja in SQL: one less way to smuggle statements
    "THUMBNAILS": False,
    "ALERT_REPORTS": False,
}

# --- security ------------------------------------------------------------------------------------
# SQLite (and other local-file) connections cannot be added through the UI
PREVENT_UNSAFE_DB_CONNECTIONS = True
# (file upload into the warehouse is off per database: allow_file_upload: false in the bundle)

# Defence in depth on top of the DuckDB connection's own settings (read-only,
# enable_external_access=false, locked configuration; see dashboards/databases/): SQL Lab and
# chart queries that call DuckDB's file readers, or read its settings or environment, are refused
# by Superset before they reach DuckDB.
_DUCKDB_FILE_FUNCTIONS = {
    "read_csv",
    "read_csv_auto",
    "read_parquet",
    "parquet_scan",
    "parquet_metadata",
    "parquet_schema",
    "read_json",
    "read_json_auto",
    "read_json_objects",
    "read_ndjson",
    "read_ndjson_auto",
    "read_text",
    "read_blob",
    "sniff_csv",
    "glob",
    "getenv",
    "duckdb_secrets",
    "duckdb_settings",
    "duckdb_extensions",
    "current_setting",
}
try:  # keep Superset's own per-engine lists and add DuckDB's
    from superset.config import DISALLOWED_SQL_FUNCTIONS as _DEFAULT_DISALLOWED
except Exception:  # pragma: no cover - outside Superset (unit tests of this file)
    _DEFAULT_DISALLOWED = {}
DISALLOWED_SQL_FUNCTIONS = {**_DEFAULT_DISALLOWED, "duckdb": _DUCKDB_FILE_FUNCTIONS}

# Cookies: served on http://localhost by default; put TLS in front for anything else
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_HTTPONLY = True
TALISMAN_ENABLED = os.environ.get("SUPERSET_TALISMAN_ENABLED", "true").lower() in (
    "1",
    "true",
    "yes",
)
