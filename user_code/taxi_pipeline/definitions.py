"""The code location: `dagster code-server start -m taxi_pipeline.definitions`."""

import dagster as dg

from taxi_pipeline import jobs, schedules, sensors
from taxi_pipeline.assets.dbt import dbt_analytics, dbt_daily_metrics
from taxi_pipeline.assets.ingestion import taxi_trips, taxi_trips_file, taxi_zones, taxi_zones_file
from taxi_pipeline.assets.metrics import airport_trips, trips_by_week
from taxi_pipeline.assets.publish import published_warehouse
from taxi_pipeline.assets.requests import adhoc_request
from taxi_pipeline.resources import build_resources
from taxi_pipeline.settings import load_settings

defs = dg.Definitions(
    assets=[
        taxi_trips_file,
        taxi_trips,
        taxi_zones_file,
        taxi_zones,
        dbt_analytics,
        dbt_daily_metrics,
        airport_trips,
        trips_by_week,
        adhoc_request,
        published_warehouse,
    ],
    jobs=[
        jobs.trip_update_job,
        jobs.daily_metrics_job,
        jobs.weekly_update_job,
        jobs.publish_job,
        jobs.adhoc_request_job,
    ],
    schedules=[
        schedules.trip_update_schedule,
        schedules.daily_metrics_schedule,
        schedules.weekly_update_schedule,
        schedules.dbt_models_schedule,
    ],
    sensors=[sensors.adhoc_request_sensor, sensors.automation_sensor],
    resources=build_resources(load_settings()),
    # Every run already has a container of its own; the default multiprocess executor would
    # also start a Python process per step, each importing the code location again (about 5 s
    # a step on 2 cores). Steps that touch the warehouse queue on the pool either way.
    executor=dg.in_process_executor,
)
