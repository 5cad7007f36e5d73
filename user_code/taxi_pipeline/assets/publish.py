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

from taxi_pipeline.automation import inputs_settled, keep_fresh
from taxi_pipeline.pools import WAREHOUSE_POOL
from taxi_pipeline.resources import Folders, Warehouse

INFO_TABLE = "snapshot_info"


def no_blocking_check_failed() -> dg.AutomationCondition:
    """True while no blocking check of an upstream asset has failed on its latest execution.

    dagster-dbt makes every dbt test of error severity a blocking check. Not Dagster's
    `all_deps_blocking_checks_passed()`: that waits for every check to have passed, and a test
    that reads two models runs only when both are built in one invocation (indirect selection
    `buildable`, analytics/dbt_project.yml), so some never run under automation and the snapshot
    would never be published. A failure blocks; a test that never ran does not.
    """
    return ~dg.AutomationCondition.any_deps_match(
        dg.AutomationCondition.any_checks_match(
            dg.AutomationCondition.check_failed(), blocking_only=True
        )
    ).with_label("no_blocking_check_failed")


def _failed_checks(
    instance: dg.DagsterInstance, dbt_assets: list[dg.AssetsDefinition]
) -> tuple[list[str], list[str]]:
    """The blocking checks (dbt tests) whose latest execution failed, and those without a result,
    the same reading as `no_blocking_check_failed()`, for runs that did not come from automation
    (a click, publish_job)."""
    failed, never_run = [], []
    for assets in dbt_assets:
        for spec in sorted(assets.check_specs, key=lambda spec: spec.key.to_user_string()):
            if not spec.blocking:
                continue
            record = instance.get_latest_asset_check_evaluation_record(spec.key)
            evaluation = record.evaluation if record else None
            # A latest record without a result is planned: its run has not reached it yet, or
            # dbt's `buildable` selection skipped it (its other model was not built). Dagster's
            # check_failed() does not count it as a failure either.
            if not isinstance(evaluation, dg.AssetCheckEvaluation):
                never_run.append(spec.key.to_user_string())
            elif not evaluation.passed:
                failed.append(spec.key.to_user_string())
    return failed, never_run


def failing_blocking_tests(
    instance: dg.DagsterInstance, dbt_assets: list[dg.AssetsDefinition]
) -> list[str]:
    """The dbt tests that hold publication now (named by a stale-snapshot alert)."""
    return _failed_checks(instance, dbt_assets)[0]


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _main_tables(conn: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        row[0]
        for row in conn.execute(
            "select table_name from information_schema.tables "
            "where table_schema = 'main' and table_type = 'BASE TABLE' order by table_name"
        ).fetchall()
    ]


def published_tables(path: Path) -> list[str]:
    """The marts the served snapshot holds (what dbt can defer to: assets/dbt.py)."""
    with duckdb.connect(str(path), read_only=True) as snapshot:
        return [table for table in _main_tables(snapshot) if table != INFO_TABLE]


def write_snapshot(conn: duckdb.DuckDBPyConnection, target: Path, run_id: str) -> dict[str, int]:
    """Copy every table of the warehouse's `main` schema (the dbt marts) into a new file."""
    tables = _main_tables(conn)
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


def served_snapshot_run(path: Path) -> tuple[str, datetime] | None:
    """The run that wrote the snapshot Superset is serving, and when (from its info table)."""
    if not path.exists():
        return None
    with duckdb.connect(str(path), read_only=True) as snapshot:
        run_id, published_at = snapshot.execute(
            f"select dagster_run_id, published_at from main.{INFO_TABLE}"
        ).fetchone()
    return run_id, published_at


def _reconcile(context: dg.AssetExecutionContext, target: Path) -> None:
    """Describe a served snapshot that no materialization describes.

    The swap (`os.replace`) is the last thing a publish does before it records the new
    materialization; a run killed between the two leaves Superset serving a file Dagster shows
    no materialization for. The next publish notices it here and records what was served (an
    observation) before it replaces it, so the asset's history never disagrees with the file.
    """
    served = served_snapshot_run(target)
    if served is None:
        return
    run_id, published_at = served
    latest = context.instance.get_latest_materialization_event(context.asset_key)
    if latest is not None and latest.run_id == run_id:
        return
    context.log.warning(
        f"The served snapshot was published by run {run_id} at {published_at}, which ended "
        "before recording it; recording it now as an observation."
    )
    context.log_event(
        dg.AssetObservation(
            asset_key=context.asset_key,
            metadata={
                "served_snapshot_run_id": run_id,
                "published_at": dg.MetadataValue.timestamp(published_at),
                "path": dg.MetadataValue.path(str(target)),
            },
        )
    )


def build_publish_asset(dbt_assets: list[dg.AssetsDefinition]) -> dg.AssetsDefinition:
    """The snapshot, downstream of every dbt model and gated on their tests."""

    @dg.asset(
        deps=[key for assets in dbt_assets for key in assets.keys],
        group_name="serving",
        kinds={"duckdb", "superset"},
        pool=WAREHOUSE_POOL,
        automation_condition=keep_fresh() & no_blocking_check_failed() & inputs_settled(),
        description="The DuckDB snapshot Superset reads: the dbt marts, published by atomic "
        "replace "
        "only when every dbt test passed.",
    )
    def published_warehouse(
        context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders
    ):
        failed, never_run = _failed_checks(context.instance, dbt_assets)
        if failed:
            raise dg.Failure(
                "Not publishing: these dbt tests failed on the current data: "
                + ", ".join(failed)
                + ". Fix the data or the model, rebuild, and publishing resumes.",
            )

        target = Path(folders.published_database)
        target.parent.mkdir(parents=True, exist_ok=True)
        _reconcile(context, target)
        staging = target.with_name(f".{target.name}.{context.run.run_id}.tmp")
        staging.unlink(missing_ok=True)
        try:
            with warehouse.get_connection() as conn:
                counts = write_snapshot(conn, staging, context.run.run_id)
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

    return published_warehouse
