"""Write-audit-publish of the snapshot that Superset reads.

Superset never opens the warehouse (DuckDB: one writer or many readers, never both). After a
build whose dbt tests all passed, the warehouse's tables are copied into a new DuckDB file
next to the published one, the copy is audited, and `os.replace` swaps it in: readers see either
the previous snapshot or the new one, never a half-written file or a lock.
"""

import os
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from taxi_pipeline.assets.dbt import dbt_analytics, dbt_daily_metrics
from taxi_pipeline.automation import keep_fresh
from taxi_pipeline.resources import WAREHOUSE_POOL, Folders, Warehouse

SNAPSHOT_FILE = "taxi.duckdb"
INFO_TABLE = "snapshot_info"

DBT_ASSETS = (dbt_analytics, dbt_daily_metrics)


def _failed_checks(instance: dg.DagsterInstance) -> tuple[list[str], list[str]]:
    """dbt tests (asset checks) whose latest completed execution failed at error severity, and
    those that never completed (a run can plan a test that dbt then does not execute, e.g. a
    relationships test whose other model was not selected: that is not a result either way)."""
    completed = {
        AssetCheckExecutionRecordStatus.SUCCEEDED,
        AssetCheckExecutionRecordStatus.FAILED,
    }
    failed, never_run = [], []
    for assets in DBT_ASSETS:
        for key in sorted(assets.check_keys, key=lambda k: k.to_user_string()):
            history = instance.event_log_storage.get_asset_check_execution_history(
                key, limit=1, status=completed
            )
            if not history:
                never_run.append(key.to_user_string())
                continue
            evaluation = history[0].evaluation
            if (
                evaluation
                and not evaluation.passed
                and evaluation.severity == dg.AssetCheckSeverity.ERROR
            ):
                failed.append(key.to_user_string())
    return failed, never_run


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def write_snapshot(conn: duckdb.DuckDBPyConnection, target: Path, run_id: str) -> dict[str, int]:
    """Copy every table of the warehouse's `main` schema (the dbt marts) into a new file."""
    tables = [
        row[0]
        for row in conn.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'main' and table_type = 'BASE TABLE' order by table_name"
        ).fetchall()
    ]
    counts: dict[str, int] = {}
    conn.execute(f"attach '{str(target).replace(chr(39), chr(39) * 2)}' as snapshot")
    try:
        for table in tables:
            conn.execute(
                f"create table snapshot.main.{_quote(table)} as select * from main.{_quote(table)}"
            )
            counts[table] = conn.execute(f"select count(*) from main.{_quote(table)}").fetchone()[0]
        conn.execute(
            f"create table snapshot.main.{INFO_TABLE} as "
            "select ?::timestamptz as published_at, ? as dagster_run_id, ? as tables",
            [datetime.now(UTC), run_id, ", ".join(tables)],
        )
    finally:
        conn.execute("detach snapshot")
    return counts


def audit_snapshot(path: Path, expected: dict[str, int]) -> None:
    """Re-open the copy on its own and check every table arrived whole."""
    with duckdb.connect(str(path), read_only=True) as snapshot:
        for table, rows in expected.items():
            found = snapshot.execute(f"select count(*) from main.{_quote(table)}").fetchone()[0]
            if found != rows:
                raise dg.Failure(f"Snapshot audit: {table} has {found} rows, the warehouse {rows}.")
            if rows == 0:
                raise dg.Failure(f"Snapshot audit: {table} is empty; refusing to publish it.")


@dg.asset(
    deps=[key for assets in DBT_ASSETS for key in assets.keys],
    group_name="serving",
    kinds={"duckdb", "superset"},
    pool=WAREHOUSE_POOL,
    automation_condition=keep_fresh(),
    description="The DuckDB snapshot Superset reads: the dbt marts, published by atomic replace "
    "only when every dbt test passed.",
)
def published_warehouse(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
    failed, never_run = _failed_checks(context.instance)
    if failed:
        raise dg.Failure(
            "Not publishing: these dbt tests failed on the current data: "
            + ", ".join(failed)
            + ". Fix the data or the model, rebuild, and publishing resumes.",
        )

    publish_dir = Path(folders.publish_dir)
    publish_dir.mkdir(parents=True, exist_ok=True)
    target = publish_dir / SNAPSHOT_FILE
    staging = publish_dir / f".{SNAPSHOT_FILE}.{context.run_id}.tmp"
    staging.unlink(missing_ok=True)
    try:
        with warehouse.get_connection() as conn:
            counts = write_snapshot(conn, staging, context.run_id)
        audit_snapshot(staging, counts)
        os.replace(staging, target)
    finally:
        staging.unlink(missing_ok=True)

    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(target)),
            "published_at": dg.MetadataValue.timestamp(datetime.now(UTC)),
            "size_bytes": target.stat().st_size,
            "tables": dg.MetadataValue.json(counts),
            "dagster/row_count": int(sum(counts.values())),
            "dbt_tests_never_run": dg.MetadataValue.json(never_run),
        }
    )
