"""The code location: `dagster code-server start -m taxi_pipeline.definitions` (or `dg dev`).

Nothing is read at import: Dagster calls `defs()` when it loads the code location, which reads
the settings once and builds everything from them.
"""

from pathlib import Path

import dagster as dg

from taxi_pipeline import jobs, progress, schedules, sensors
from taxi_pipeline.alerts.sensor import build_alert_sensor
from taxi_pipeline.assets.dbt import build_dbt_assets
from taxi_pipeline.assets.ingestion import build_trip_assets, taxi_zones, taxi_zones_file
from taxi_pipeline.assets.metrics import build_metric_assets
from taxi_pipeline.assets.publish import build_publish_asset, failing_blocking_tests
from taxi_pipeline.assets.requests import build_request_asset
from taxi_pipeline.assets.tlc_site import build_tlc_site
from taxi_pipeline.freshness import with_freshness_policies
from taxi_pipeline.partitions import build_partitions
from taxi_pipeline.project import ANALYTICS_DIR, build_dbt_project
from taxi_pipeline.resources import build_resources
from taxi_pipeline.settings import Settings, load_settings


def build_defs(settings: Settings, dbt_project_dir: Path = ANALYTICS_DIR) -> dg.Definitions:
    """Everything, from the settings; `dbt_project_dir` lets tests use a changed copy of the dbt
    project."""
    partitions = build_partitions(settings)
    project = build_dbt_project(settings, dbt_project_dir)
    dbt_assets = build_dbt_assets(project, partitions.daily)
    dbt_analytics, dbt_daily_metrics = dbt_assets
    all_jobs = jobs.build_jobs(dbt_analytics, dbt_daily_metrics)
    trip_files, zone_lookup, tlc_site_sensor = build_tlc_site(
        partitions.monthly, settings.alerts.source_down_after
    )
    return dg.Definitions(
        assets=with_freshness_policies(
            [
                trip_files,
                zone_lookup,
                *build_trip_assets(partitions.monthly),
                taxi_zones_file,
                taxi_zones,
                *dbt_assets,
                *build_metric_assets(dbt_analytics, partitions.weekly),
                build_request_asset(dbt_analytics),
                build_publish_asset(dbt_assets),
            ],
            settings,
        ),
        jobs=all_jobs,
        schedules=schedules.build_schedules(dbt_analytics),
        sensors=[
            tlc_site_sensor,
            sensors.adhoc_request_sensor,
            sensors.automation_sensor,
            progress.build_fill_progress_sensor(settings.superset_url),
            build_alert_sensor(
                settings, lambda instance: failing_blocking_tests(instance, dbt_assets)
            ),
        ],
        resources=build_resources(settings, project),
        # Every run already has a container of its own; the default multiprocess executor would
        # also start a Python process per step, each importing the code location again (about 5 s
        # a step on 2 cores). Steps that touch the warehouse queue on the pool either way.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_defs(load_settings())
