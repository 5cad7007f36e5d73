"""Process of the webserver's container: `dagster-webserver`, whose pooled PostgreSQL connections
are tested before use.

    python /opt/dagster/webserver_pre_ping.py --host 0.0.0.0 --port 3000 --workspace workspace.yaml

Why: dagster-webserver (`optimize_for_webserver` in dagster-postgres 0.29) keeps each storage's
connection open in a SQLAlchemy pool but does not set `pool_pre_ping`, and no option or
dagster.yaml setting turns it on (upstream: dagster-io/dagster#33879, PR #33961). When PostgreSQL
restarts, every pooled connection dies with it; the next request takes a dead one from the pool,
its query fails with "server closed the connection unexpectedly", and the UI or API gets a
PythonError (HTTP 500) once per dead connection until SQLAlchemy has replaced them. The daemon and
the run workers are not affected: their storages open a new connection each time (NullPool).

The fix is SQLAlchemy's own pessimistic disconnect handling, through its public pool events: on
every checkout from a QueuePool (the webserver's pools) a `SELECT 1` on the DBAPI connection; if it
fails, raising InvalidatePoolError makes the pool drop every connection it holds and check out a
fresh one, so the request goes through. The cost is one round trip per checkout, as with
`pool_pre_ping`.
"""

from __future__ import annotations

import sys

from sqlalchemy import event
from sqlalchemy.exc import InvalidatePoolError
from sqlalchemy.pool import QueuePool


@event.listens_for(QueuePool, "checkout")
def ping_before_use(dbapi_connection, connection_record, connection_proxy) -> None:
    """A connection that cannot run `SELECT 1` is dead: the pool replaces it (and every other
    connection opened before it) before the checkout returns."""
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        # outside autocommit (dagster's storages use it) the ping must not leave a transaction open
        if not getattr(dbapi_connection, "autocommit", True):
            dbapi_connection.rollback()
    except Exception as exc:  # the driver's error type varies (OperationalError, InterfaceError)
        raise InvalidatePoolError(f"pooled connection failed its ping: {exc}") from exc


if __name__ == "__main__":
    from dagster_webserver.cli import main

    sys.argv[0] = "dagster-webserver"
    sys.exit(main())
