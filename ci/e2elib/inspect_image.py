"""Checks that run inside the user_code image (`docker run --rm <image> python -c ...`).

The scripts are plain strings: they execute with the image's Python and packages, against the
stack's volumes mounted read-only, after every run has finished (DuckDB: readers only while no
writer holds the file).
"""

from __future__ import annotations

import json
import subprocess

from .stack import PhaseFailure

# What the code location defines, straight from `taxi_pipeline.definitions` (compared with what the
# webserver reports, so a definition the location failed to serve cannot go unnoticed).
DEFINITIONS_SCRIPT = r"""
import json
from taxi_pipeline.definitions import defs
repo = defs.get_repository_def()
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
import json, os, duckdb
from pathlib import Path

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

warehouse = os.environ["DUCKDB_DATABASE"]
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
published = Path(os.environ["TAXI_PUBLISH_DIR"]) / "taxi.duckdb"
report["published_tables"] = counts(str(published)) if published.exists() else None
outputs = Path(os.environ["TAXI_DATA_DIR"]) / "outputs"
report["outputs"] = {p.name: p.stat().st_size for p in sorted(outputs.glob("*")) if p.is_file()}
print(json.dumps(report))
"""


def run_in_image(
    image: str,
    script: str,
    volumes: dict[str, str] | None = None,
    env_file: str | None = None,
    timeout: float = 300,
) -> dict:
    cmd = ["docker", "run", "--rm", "--network", "none"]
    if env_file:
        cmd += ["--env-file", env_file]
    for volume, target in (volumes or {}).items():
        cmd += ["--volume", f"{volume}:{target}:ro"]
    cmd += [image, "python", "-c", script]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise PhaseFailure(
            f"script in {image} failed ({result.returncode}):\n"
            f"{result.stdout[-3000:]}{result.stderr[-6000:]}"
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise PhaseFailure(f"script in {image} printed no JSON:\n{result.stdout[-3000:]}")
    return json.loads(lines[-1])
