"""Schedules: the dbt models that do not follow the months, once a day.

The course's calendar schedules (trip_update_job on the 5th of each month, daily_metrics_job
every day, weekly_update_job every Monday) are gone on purpose: they requested partitions by the
calendar, while the TLC publishes a month about two months after it ends and re-publishes
corrections. Ingestion now follows the site itself: `tlc_site_sensor` observes which months are
published, and every asset's automation condition (`keep_fresh()`) loads a month, then its days,
weeks, charts and the snapshot, once it is published, and again when it is re-published. The
jobs stay, for runs and backfills started by hand.
"""

from __future__ import annotations

import dagster as dg
from dagster_dbt import build_schedule_from_dbt_selection

from taxi_pipeline.assets.dbt import MODELS_JOB


def build_schedules(dbt_analytics: dg.AssetsDefinition) -> list[dg.ScheduleDefinition]:
    return [
        # The unpartitioned dbt models (staging and location_metrics) and their tests, every
        # morning: nothing in them depends on which months are published.
        build_schedule_from_dbt_selection(
            [dbt_analytics],
            job_name=MODELS_JOB,
            cron_schedule="0 5 * * *",
            dbt_select="fqn:*",
            default_status=dg.DefaultScheduleStatus.RUNNING,
        ),
    ]
