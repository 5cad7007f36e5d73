"""Jobs: the course's, with each job holding assets of one partitioning only.

`trip_update_job` is the course's monthly ingestion job: everything except `stg_trips` and its
downstream (selected with `build_dbt_asset_selection`), which are unpartitioned or daily and
cannot share a monthly job. Those are kept fresh by their automation conditions (rebuilt as
soon as a month lands), so no asset is orphaned. No job runs on a calendar schedule any more
(schedules.py says why): they are for runs and backfills started by hand.
"""

from __future__ import annotations

import dagster as dg
from dagster_dbt import build_dbt_asset_selection

from taxi_pipeline.assets.dbt import DAILY_JOB, DAILY_MODELS

# Not partitioned: the sensor for request files can name it at import.
adhoc_request_job = dg.define_asset_job(
    name="adhoc_request_job",
    selection=dg.AssetSelection.assets("adhoc_request"),
    description="One chart per request file; launched by adhoc_request_sensor.",
)


def build_jobs(
    dbt_analytics: dg.AssetsDefinition, dbt_daily_metrics: dg.AssetsDefinition
) -> list[dg.JobDefinition]:
    dbt_trips_selection = build_dbt_asset_selection([dbt_analytics], "stg_trips").downstream()
    return [
        dg.define_asset_job(
            name="trip_update_job",
            selection=dg.AssetSelection.all()
            - dg.AssetSelection.assets("trips_by_week", "adhoc_request")
            - dbt_trips_selection,
            description="Monthly: fetch and load a month of trips, and refresh the zones.",
        ),
        dg.define_asset_job(
            name=DAILY_JOB,
            selection=build_dbt_asset_selection([dbt_daily_metrics], DAILY_MODELS),
            description="Daily: rebuild a day of the incremental `daily_metrics` model.",
        ),
        dg.define_asset_job(
            name="weekly_update_job",
            selection=dg.AssetSelection.assets("trips_by_week"),
            description="Weekly: add the week's totals to trips_by_week.csv.",
        ),
        dg.define_asset_job(
            name="publish_job",
            selection=dg.AssetSelection.assets("published_warehouse"),
            description="Publish the audited snapshot of the marts for Superset.",
        ),
        adhoc_request_job,
    ]
