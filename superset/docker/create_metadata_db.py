"""Creates Superset's metadata role and database in the stack's PostgreSQL, idempotently.

Run by the one-shot compose service `superset-db-init` (the Superset image, before `superset`
starts), so that the long-running Superset container never holds the PostgreSQL admin password.
Unlike a /docker-entrypoint-initdb.d script it also works on an existing PostgreSQL volume.
On every run: the role exists with LOGIN and the password from .env (a changed password applies),
the database exists and is owned by the role, PUBLIC cannot connect to it.

Environment: PGHOST, PGPORT (5432), PGUSER / PGPASSWORD (a role that may create roles and
databases: the stack's POSTGRES_USER), SUPERSET_DB_USER (superset), SUPERSET_DB_NAME (superset),
SUPERSET_DB_PASSWORD (required).
"""

from __future__ import annotations

import os
import sys
import time

import psycopg2
from psycopg2 import sql


def require(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"create_metadata_db: the environment variable {name} is not set")
    return value


def connect(timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = psycopg2.connect(
                host=require("PGHOST"),
                port=int(os.environ.get("PGPORT", "5432")),
                user=require("PGUSER"),
                password=require("PGPASSWORD"),
                dbname=os.environ.get("PGDATABASE", "postgres"),
                connect_timeout=5,
            )
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            return conn
        except psycopg2.OperationalError as exc:
            if time.monotonic() > deadline:
                raise SystemExit(f"create_metadata_db: PostgreSQL not reachable: {exc}") from exc
            time.sleep(2)


def main() -> int:
    user = os.environ.get("SUPERSET_DB_USER", "superset")
    dbname = os.environ.get("SUPERSET_DB_NAME", "superset")
    password = require("SUPERSET_DB_PASSWORD")
    conn = connect()
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(user)))
            print(f"role {user!r} created", file=sys.stderr)
        cur.execute(
            sql.SQL("ALTER ROLE {} WITH LOGIN PASSWORD {}").format(
                sql.Identifier(user), sql.Literal(password)
            )
        )
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
        if cur.fetchone() is None:
            cur.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(dbname), sql.Identifier(user)
                )
            )
            print(f"database {dbname!r} created", file=sys.stderr)
        cur.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(dbname)))
        cur.execute(
            sql.SQL("GRANT ALL ON DATABASE {} TO {}").format(
                sql.Identifier(dbname), sql.Identifier(user)
            )
        )
    conn.close()
    print(f"superset metadata database {dbname!r} and role {user!r} are in place", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
