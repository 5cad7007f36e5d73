"""Checks that run in a one-off container of the stack's user_code service
(`docker compose run --rm --no-deps user_code python -c ...`).

The scripts are plain strings: they execute with the image's Python and packages, with the
service's own settings and volumes, so every path comes from the code location's settings
(`load_settings()`), never from a copy here. They only read, after every run has finished
(DuckDB: readers only while no writer holds the file).
"""

from __future__ import annotations

import json

from .stack import PhaseFailure, Stack

# What the code location defines, straight from `taxi_pipeline.definitions` (compared with what the
# webserver reports, so a definition the location failed to serve cannot go unnoticed).
DEFINITIONS_SCRIPT = r"""
import json
from taxi_pipeline.definitions import build_defs
from taxi_pipeline.settings import load_settings
repo = build_defs(load_settings()).get_repository_def()
graph = repo.asset_graph
print(json.dumps({
    "assets": sorted(key.to_user_string() for key in graph.get_all_asset_keys()),
    "checks": sorted(
        f"{key.asset_key.to_user_string()}:{key.name}" for key in graph.asset_check_keys
    ),
    "jobs": sorted(job.name for job in repo.get_all_jobs()),
    "schedules": sorted(schedule.name for schedule in repo.schedule_defs),
    "sensors": sorted(sensor.name for sensor in repo.sensor_defs),
}))
"""

# Row counts of the warehouse and of the snapshot published for Superset, plus the output files.
WAREHOUSE_SCRIPT = r"""
import json, duckdb
from taxi_pipeline.settings import load_settings

def one(con, sql):
    return con.execute(sql).fetchone()[0]

def counts(path):
    con = duckdb.connect(path, read_only=True)
    tables = con.execute(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_type = 'BASE TABLE' order by 1").fetchall()
    result = {name: one(con, f'select count(*) from {name}') for (name,) in tables}
    con.close()
    return result

settings = load_settings()
warehouse = str(settings.duckdb_database)
con = duckdb.connect(warehouse, read_only=True)
report = {
    "trips_by_month": dict(con.execute(
        "select partition_date, count(*) from raw_taxis.trips group by 1 order by 1").fetchall()),
    "zones": one(con, "select count(*) from raw_taxis.zones"),
    "stg_trips": one(con, "select count(*) from main.stg_trips"),
    "location_metrics_trips": one(con, "select coalesce(sum(trips), 0) from main.location_metrics"),
    "daily_metrics_days": one(con, "select count(*) from main.daily_metrics"),
    "daily_metrics_trips": one(con, "select coalesce(sum(trip_count), 0) from main.daily_metrics"),
    "daily_metrics_range": [str(v) for v in con.execute(
        "select min(date_of_business), max(date_of_business) from main.daily_metrics").fetchone()],
}
con.close()
report["warehouse_tables"] = counts(warehouse)
published = settings.published_database
report["published_tables"] = counts(str(published)) if published.exists() else None
outputs = settings.outputs_dir
report["outputs"] = {p.name: p.stat().st_size for p in sorted(outputs.glob("*")) if p.is_file()}
print(json.dumps(report))
"""


def run_in_service(stack: Stack, script: str, timeout: float = 300) -> dict:
    """The JSON the script prints last, run in a one-off container of the user_code service."""
    command = ["run", "--rm", "--no-deps", "-T", "user_code", "python", "-c", script]
    result = stack.compose(*command, timeout=timeout)  # PhaseFailure with its output if it fails
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise PhaseFailure(f"script in user_code printed no JSON:\n{result.stdout[-3000:]}")
    return json.loads(lines[-1])
