"""What the benchmark suite measures, one case per child process.

    python -m benchmarks.cases <case> '<json arguments>'   (from user_code/; suite.py does this)

Each case runs in a fresh interpreter so that its peak memory is its own (``ru_maxrss`` of the
process and of the subprocesses it waited for, such as dbt) and no warm cache from another case
helps it. A case prints one JSON object: ``seconds`` (the timed part only, never the imports or
the set-up) and ``peak_mb``, plus what else it knows.

Every project figure has a floor measured the same way: DuckDB alone on the same file, or the
same SQL that dbt ran, executed directly.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, children) / 1024, 1)  # Linux: KiB


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# --- loading a month ------------------------------------------------------------------------------


def load_floor(parquet: str, database: str) -> dict:
    """Bare DuckDB: the whole file into a table, no checks, no normalisation."""
    import duckdb

    conn = duckdb.connect(database)
    started = time.perf_counter()
    conn.execute(f"CREATE TABLE trips AS SELECT * FROM read_parquet({_sql_str(parquet)})")
    conn.close()  # the checkpoint that writes the table to disk is part of the work
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": duckdb.connect(database).sql("FROM trips SELECT count(*)").fetchone()[0],
    }


def load_project(parquet: str, database: str, month: str) -> dict:
    """The project's loader, exactly as the `taxi_trips` asset calls it."""
    import duckdb

    from taxi_pipeline.sources.loading import load_trips_month

    conn = duckdb.connect(database)
    started = time.perf_counter()
    report = load_trips_month(conn, Path(parquet), month)
    conn.close()
    return {"seconds": time.perf_counter() - started, "rows": report.rows_loaded}


def load_months(raw_dir: str, database: str, months: list[str]) -> dict:
    """Set-up, timed for information: the zones and every month into one warehouse."""
    import duckdb

    from taxi_pipeline.sources.layout import ZONES_FILE_NAME, trips_file_name
    from taxi_pipeline.sources.loading import load_trips_month, load_zones

    conn = duckdb.connect(database)
    started = time.perf_counter()
    load_zones(conn, Path(raw_dir) / ZONES_FILE_NAME)
    rows = sum(
        load_trips_month(conn, Path(raw_dir) / trips_file_name(m), m).rows_loaded for m in months
    )
    conn.close()
    return {"seconds": time.perf_counter() - started, "rows": rows}


# --- dbt ------------------------------------------------------------------------------------------


def dbt_command(database: str, target: str, args: list[str]) -> dict:
    """One dbt CLI invocation against `database`, from process start to exit (the wall time a
    Dagster step waits for), with what dbt itself recorded in run_results.json."""
    from taxi_pipeline.project import ANALYTICS_DIR, dbt_vars

    project = str(ANALYTICS_DIR)
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    command = [
        str(Path(sys.executable).with_name("dbt")), *args, *dbt_vars(Path(database)),
        "--project-dir", project, "--profiles-dir", project,
        "--target-path", target, "--log-path", target,
    ]  # fmt: skip
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command)} failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
        )
    results_file = Path(target) / "run_results.json"  # not written by `dbt parse`
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    log = (Path(target) / "dbt.log").read_text()
    return {
        "seconds": seconds,
        "dbt_elapsed": results.get("elapsed_time"),
        "nodes": len(results.get("results", [])),
        "full_parse": "Unable to do partial parsing" in log or "Starting full parse" in log,
    }


def sql_floor(database: str, run_results: str, manifest: str) -> dict:
    """The SQL a dbt invocation ran, executed directly in DuckDB: each model's compiled select
    materialized the way dbt materializes it, each test's query counted, in dbt's order."""
    import duckdb

    results = json.loads(Path(run_results).read_text())["results"]
    nodes = json.loads(Path(manifest).read_text())["nodes"]
    conn = duckdb.connect(database)
    statements = []
    for result in results:
        node = nodes[result["unique_id"]]
        if node["resource_type"] == "operation":
            continue  # the project's on-run-start hook: no statement without --defer
        code = result["compiled_code"]
        relation = f'main."{node["alias"]}"'
        kind = node["config"]["materialized"]
        if node["resource_type"] == "test":
            statements.append(f"SELECT count(*) FROM ({code}) AS dbt_test")
        elif kind == "view":
            statements.append(f"CREATE OR REPLACE VIEW {relation} AS {code}")
        elif (
            kind == "table"
            or conn.sql(
                f"SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'main' "
                f"AND table_name = {_sql_str(node['alias'])}"
            ).fetchone()[0]
            == 0
        ):
            statements.append(f"CREATE OR REPLACE TABLE {relation} AS {code}")
        else:  # incremental, delete+insert on its unique key, as dbt-duckdb does it
            key = node["config"]["unique_key"]
            statements += [
                f"CREATE OR REPLACE TEMP TABLE floor_batch AS {code}",
                f"DELETE FROM {relation} WHERE {key} IN (SELECT {key} FROM floor_batch)",
                f"INSERT INTO {relation} SELECT * FROM floor_batch",
            ]
    started = time.perf_counter()
    for statement in statements:
        conn.execute(statement).fetchall()
    conn.close()
    return {"seconds": time.perf_counter() - started, "statements": len(statements)}


def dbt_import_floor() -> dict:
    """What any dbt process pays before it reads the project: the interpreter and dbt's imports."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import dbt.cli.main, dbt.adapters.duckdb"], check=True)
    return {"seconds": time.perf_counter() - started}


# --- Dagster --------------------------------------------------------------------------------------


def daily_step(day: str) -> dict:
    """One `daily_metrics` day partition, materialized exactly as a run does it (the asset, its
    resources from the settings, dbt as a subprocess, row counts and column metadata)."""
    import dagster as dg

    from taxi_pipeline.definitions import build_defs
    from taxi_pipeline.settings import load_settings

    defs = build_defs(load_settings())
    daily = defs.get_assets_def("daily_metrics")
    with dg.instance_for_test() as instance:
        started = time.perf_counter()
        result = dg.materialize(
            [daily], partition_key=day, resources=defs.resources, instance=instance
        )
        seconds = time.perf_counter() - started
    assert result.success
    # measured as deployed only if the row count came back (a wrong catalog fails it quietly)
    [event] = [
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[-1] == "daily_metrics"
    ]
    assert "dagster/row_count" in event.materialization.metadata, event.materialization.metadata
    target = next(Path(os.environ["DBT_TARGET_PATH"]).glob(f"*-{result.run_id[:7]}-*"))
    results = json.loads((target / "run_results.json").read_text())
    log = (target / "dbt.log").read_text()
    command = next(
        line.split("invocation_command': '", 1)[1].split("'", 1)[0]
        for line in log.splitlines()
        if "invocation_command': '" in line
    )
    return {
        "seconds": seconds,
        "dbt_elapsed": results["elapsed_time"],
        "sql_seconds": sum(r["execution_time"] for r in results["results"]),
        "full_parse": "Unable to do partial parsing" in log or "Starting full parse" in log,
        "target": str(target),
        "dbt_args": _without_vars(command.split()[1:]),
    }


def _without_vars(args: list[str]) -> list[str]:
    """A logged dbt command minus its --vars, which `dbt_command` passes for its own warehouse."""
    if "--vars" in args:
        at = args.index("--vars")
        return args[:at] + args[at + 2 :]
    return args


def definitions_load() -> dict:
    """What the code server does on start and reload: import the definitions, resolve them."""
    started = time.perf_counter()
    import dagster  # noqa: F401
    import dagster_dbt  # noqa: F401

    imported = time.perf_counter()
    from taxi_pipeline.definitions import build_defs
    from taxi_pipeline.settings import load_settings

    build_defs(load_settings()).get_repository_def().get_all_jobs()
    done = time.perf_counter()
    return {"seconds": done - started, "after_imports": done - imported}


def imports_floor() -> dict:
    started = time.perf_counter()
    import dagster  # noqa: F401
    import dagster_dbt  # noqa: F401

    return {"seconds": time.perf_counter() - started}


CASES = {
    f.__name__: f
    for f in (
        load_floor,
        load_project,
        load_months,
        dbt_command,
        sql_floor,
        dbt_import_floor,
        daily_step,
        definitions_load,
        imports_floor,
    )
}


def main() -> None:
    name, arguments = sys.argv[1], json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    started = time.perf_counter()
    outcome = CASES[name](**arguments)
    outcome.setdefault("process_seconds", time.perf_counter() - started)
    outcome["peak_mb"] = _peak_mb()
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
