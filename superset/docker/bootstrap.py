"""Idempotent start-up of the Superset container (run by docker/start.sh before the web server).

    python bootstrap.py            all steps below, then exit 0 (start.sh then execs gunicorn)
    python bootstrap.py bundle OUT.zip   only zip the dashboards bundle (used by the tests)

Steps, each safe to repeat on every start:
 1. check the required variables (SUPERSET_SECRET_KEY, SUPERSET_DB_PASSWORD,
    SUPERSET_ADMIN_PASSWORD): a missing one stops the start with a message naming it;
 2. wait for PostgreSQL (SUPERSET_DB_HOST:SUPERSET_DB_PORT) to accept logins of Superset's user;
 3. `superset db upgrade` (migrations; no-op when current);
 4. `superset init` (roles and permissions);
 5. create the admin, or update its password / e-mail / role when it exists
    (SUPERSET_ADMIN_USERNAME default admin, SUPERSET_ADMIN_PASSWORD, SUPERSET_ADMIN_EMAIL);
 6. zip the YAML bundle (SUPERSET_DASHBOARDS_DIR, default /app/dashboards) and import it with
    Superset's ImportAssetsCommand, which overwrites the database, datasets, charts and dashboards
    with the same uuids: a restart duplicates nothing, and edits to the YAML take effect.
    The database URI's file path is set from SUPERSET_DUCKDB_PATH when given.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml

BUNDLE_ROOT = "taxi_dashboards"  # the single top-level folder Superset expects in the zip
REQUIRED = {
    "SUPERSET_SECRET_KEY": "Superset's SECRET_KEY (generate: openssl rand -base64 42)",
    "SUPERSET_DB_PASSWORD": "password of Superset's metadata database user",
    "SUPERSET_ADMIN_PASSWORD": "password of the Superset admin user",
}


def log(message: str) -> None:
    print(f"[superset-bootstrap] {message}", file=sys.stderr, flush=True)


def check_required_env(environ: dict[str, str] | None = None) -> None:
    """Stops (SystemExit) naming every required variable that is unset or empty."""
    environ = os.environ if environ is None else environ
    missing = [name for name in REQUIRED if not environ.get(name, "").strip()]
    if missing:
        details = "; ".join(f"{name} ({REQUIRED[name]})" for name in missing)
        raise SystemExit(
            f"[superset-bootstrap] missing required environment variable(s): {details}. "
            "Set them in .env (see .env.example); they deliberately have no defaults."
        )


# --- the bundle ----------------------------------------------------------------------------------


def duckdb_uri(path: str) -> str:
    """SQLAlchemy URI of the read-only DuckDB file at an absolute path."""
    if not path.startswith("/"):
        raise ValueError(f"SUPERSET_DUCKDB_PATH must be absolute, got {path!r}")
    return f"duckdb:///{path}?access_mode=read_only"


def load_bundle(src: Path, duckdb_path: str | None = None) -> dict[str, dict[str, Any]]:
    """The bundle's YAML documents by relative path, normalised for Superset's importer.

    - `query_context` may be written as a readable mapping; Superset wants a JSON string.
    - the database URI takes its file path from `duckdb_path` when given, and always keeps
      access_mode=read_only.
    """
    src = Path(src)
    docs: dict[str, dict[str, Any]] = {}
    for file in sorted(src.rglob("*.yaml")):
        rel = file.relative_to(src).as_posix()
        doc = yaml.safe_load(file.read_text())
        if not isinstance(doc, dict):
            raise ValueError(f"{rel}: not a YAML mapping")
        if rel.startswith("charts/") and isinstance(doc.get("query_context"), dict):
            doc["query_context"] = json.dumps(doc["query_context"], sort_keys=True)
        if rel.startswith("databases/"):
            if duckdb_path:
                doc["sqlalchemy_uri"] = duckdb_uri(duckdb_path)
            parts = urlsplit(doc["sqlalchemy_uri"])
            if parts.scheme.startswith("duckdb") and "access_mode=read_only" not in parts.query:
                query = "&".join(q for q in (parts.query, "access_mode=read_only") if q)
                doc["sqlalchemy_uri"] = urlunsplit(parts._replace(query=query))
        docs[rel] = doc
    if "metadata.yaml" not in docs:
        raise ValueError(f"{src}: no metadata.yaml")
    return docs


def build_bundle(src: Path, duckdb_path: str | None = None) -> bytes:
    """The zip Superset imports: one top folder holding metadata.yaml and the asset folders."""
    docs = load_bundle(src, duckdb_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, doc in docs.items():
            zf.writestr(f"{BUNDLE_ROOT}/{rel}", yaml.safe_dump(doc, sort_keys=False))
    return buffer.getvalue()


# --- start-up steps ------------------------------------------------------------------------------


def wait_for_postgres(timeout: float = 120.0) -> None:
    """Waits until Superset's metadata database accepts a login (not just a TCP connection)."""
    import psycopg2  # only in the image

    host = os.environ.get("SUPERSET_DB_HOST", "postgres")
    port = int(os.environ.get("SUPERSET_DB_PORT", "5432"))
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=3):
                pass
            conn = psycopg2.connect(
                host=host,
                port=port,
                dbname=os.environ.get("SUPERSET_DB_NAME", "superset"),
                user=os.environ.get("SUPERSET_DB_USER", "superset"),
                password=os.environ["SUPERSET_DB_PASSWORD"],
                connect_timeout=5,
            )
            conn.close()
            log(f"PostgreSQL at {host}:{port} is ready")
            return
        except Exception as exc:
            last_error = exc
            time.sleep(2)
    raise SystemExit(
        f"[superset-bootstrap] PostgreSQL at {host}:{port} not ready after {timeout:.0f}s: "
        f"{last_error}"
    )


def superset_cli(*args: str) -> None:
    started = time.monotonic()
    log(f"superset {' '.join(args)}")
    subprocess.run(["superset", *args], check=True)
    log(f"superset {args[0]} done in {time.monotonic() - started:.1f}s")


def admin_and_import(bundle: bytes) -> None:
    """Creates or updates the admin, then imports the bundle, in one application context."""
    from flask import g
    from superset.app import create_app

    app = create_app()
    with app.app_context():
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.commands.importers.v1.utils import get_contents_from_bundle
        from superset.extensions import db

        from superset import security_manager

        username = os.environ.get("SUPERSET_ADMIN_USERNAME", "admin")
        password = os.environ["SUPERSET_ADMIN_PASSWORD"]
        email = os.environ.get("SUPERSET_ADMIN_EMAIL", f"{username}@example.com")
        role = security_manager.find_role("Admin")
        if role is None:
            raise SystemExit("[superset-bootstrap] role Admin missing: did `superset init` run?")
        user = security_manager.find_user(username=username)
        if user is None:
            user = security_manager.add_user(
                username, "Superset", "Admin", email, role, password=password
            )
            if not user:
                raise SystemExit(f"[superset-bootstrap] could not create admin {username!r}")
            log(f"admin {username!r} created")
        else:
            security_manager.reset_password(user.id, password)
            user = security_manager.find_user(username=username)
            user.email = email
            user.active = True
            if role not in user.roles:
                user.roles.append(role)
            security_manager.update_user(user)
            log(f"admin {username!r} exists: password, e-mail and role updated")
        db.session.commit()

        g.user = user
        with zipfile.ZipFile(io.BytesIO(bundle)) as zf:
            contents = get_contents_from_bundle(zf)
        ImportAssetsCommand(contents).run()
        db.session.commit()
        log(f"bundle imported ({len(contents)} files)")


def main(argv: list[str]) -> int:
    src = Path(os.environ.get("SUPERSET_DASHBOARDS_DIR", "/app/dashboards"))
    duckdb_path = os.environ.get("SUPERSET_DUCKDB_PATH") or None
    if argv[:1] == ["bundle"]:
        out = Path(argv[1])
        out.write_bytes(build_bundle(src, duckdb_path))
        log(f"wrote {out}")
        return 0

    started = time.monotonic()
    check_required_env()
    bundle = build_bundle(src, duckdb_path)  # fail early on a broken bundle
    Path("/tmp/taxi_dashboards.zip").write_bytes(bundle)  # kept for inspection
    wait_for_postgres(float(os.environ.get("SUPERSET_DB_WAIT_SECONDS", "120")))
    superset_cli("db", "upgrade")
    superset_cli("init")
    admin_and_import(bundle)
    log(f"start-up steps done in {time.monotonic() - started:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
