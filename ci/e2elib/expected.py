"""What the code location must serve (names from the team contract and taxi_pipeline)."""

ASSETS = {
    "taxi_trips_file",
    "taxi_trips",
    "taxi_zones_file",
    "taxi_zones",
    "stg_trips",
    "stg_zones",
    "location_metrics",
    "daily_metrics",
    "airport_trips",
    "trips_by_week",
    "adhoc_request",
    "published_warehouse",
}
# Every asset that opens the DuckDB warehouse is in this pool (limited to 1 in dagster.yaml).
WAREHOUSE_POOL = "duckdb_warehouse"
WAREHOUSE_ASSETS = ASSETS - {"taxi_trips_file", "taxi_zones_file"}
# dbt models whose tests must load as asset checks
DBT_MODELS = {"stg_trips", "stg_zones", "location_metrics", "daily_metrics"}
JOBS = {
    "trip_update_job",
    "weekly_update_job",
    "daily_metrics_job",
    "dbt_models_job",
    "publish_job",
    "adhoc_request_job",
}
SCHEDULES = {
    "trip_update_job_schedule",
    "daily_metrics_job_schedule",
    "weekly_update_job_schedule",
    "dbt_models_job_schedule",
}
SENSORS = {"adhoc_request_sensor", "automation_sensor", "fill_progress_sensor"}
# Materialized only on request (a JSON file in the requests folder), not by the range fill.
ON_REQUEST_ASSETS = {"adhoc_request"}
# Zone lookup rows (the TLC's file, which the sample source reproduces).
ZONES = 265
