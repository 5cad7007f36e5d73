"""Schedules: ingestion by month, rollups by day and week, the dbt models daily.

All start RUNNING: a deployed platform keeps itself fresh without anyone visiting the UI.
Partitioned schedules request the partition that has just ended; once the configured range
(TAXI_END_MONTH) is behind them they keep naming its last partition under the same run key,
which the daemon launches only once.
"""

from __future__ import annotations

import dagster as dg
from dagster_dbt import build_schedule_from_dbt_selection

RUNNING = dg.DefaultScheduleStatus.RUNNING


def build_schedules(
    jobs: dict[str, dg.JobDefinition], dbt_analytics: dg.AssetsDefinition
) -> list[dg.ScheduleDefinition]:
    return [
        # The TLC publishes a month's file some weeks after it ends; the 5th is the course's choice.
        dg.build_schedule_from_partitioned_job(
            jobs["trip_update_job"], day_of_month=5, hour_of_day=0, default_status=RUNNING
        ),
        dg.build_schedule_from_partitioned_job(
            jobs["daily_metrics_job"], hour_of_day=6, default_status=RUNNING
        ),
        dg.build_schedule_from_partitioned_job(
            jobs["weekly_update_job"], day_of_week=1, hour_of_day=7, default_status=RUNNING
        ),
        # The unpartitioned dbt models (staging and location_metrics) and their tests, every
        # morning.
        build_schedule_from_dbt_selection(
            [dbt_analytics],
            job_name="dbt_models_job",
            cron_schedule="0 5 * * *",
            dbt_select="fqn:*",
            default_status=RUNNING,
        ),
    ]
