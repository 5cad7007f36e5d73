"""The concurrency pool of the DuckDB warehouse: its name and limit, in this one place.

Every step that opens the warehouse takes a slot of this pool. DuckDB allows one writer or many
readers, never both, so the pool has a single slot: runs from schedules, sensors, automation and
the UI can start together, their warehouse steps queue.

`python -m taxi_pipeline.pools` sets the limit on the Dagster instance; docker-compose.yml's
one-shot `dagster-init` service runs it before the webserver and the daemon start. With only
dagster.yaml's `pools: default_limit` the pool's row would be created lazily by whichever run
claims it first, and two runs starting together race on that insert.
"""

import subprocess

WAREHOUSE_POOL = "duckdb_warehouse"
WAREHOUSE_POOL_LIMIT = 1


def set_pool_limit() -> None:
    subprocess.run(
        ["dagster", "instance", "concurrency", "set", WAREHOUSE_POOL, str(WAREHOUSE_POOL_LIMIT)],
        check=True,
    )


if __name__ == "__main__":
    set_pool_limit()
