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
    "tlc/yellow_tripdata",
    "tlc/taxi_zone_lookup",
}
# The TLC's files: observed by tlc_site_sensor (the fill waits for it), never materialized.
OBSERVED_SOURCES = {"tlc/yellow_tripdata", "tlc/taxi_zone_lookup"}
# Every asset that opens the DuckDB warehouse is in this pool (limited to 1 in dagster.yaml).
WAREHOUSE_POOL = "duckdb_warehouse"
WAREHOUSE_ASSETS = ASSETS - OBSERVED_SOURCES - {"taxi_trips_file", "taxi_zones_file"}
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
SCHEDULES = {"dbt_models_job_schedule"}
SENSORS = {
    "tlc_site_sensor",
    "adhoc_request_sensor",
    "automation_sensor",
    "fill_progress_sensor",
    "alert_sensor",
}
# Sends the notifications the check counts: it keeps running when the check pauses the others.
ALERT_SENSOR = "alert_sensor"
# Not materialized by the range fill: on request only (a JSON file in the requests folder), or
# observed rather than materialized.
NOT_FILLED = {"adhoc_request"} | OBSERVED_SOURCES
# Zone lookup rows (the TLC's file, which the sample source reproduces).
ZONES = 265
