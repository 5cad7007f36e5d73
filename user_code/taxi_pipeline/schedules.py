"""Schedules: ingestion by month, rollups by day and week, the dbt models daily.

All start RUNNING: a deployed platform keeps itself fresh without anyone visiting the UI.
Partitioned schedules request the partition that has just ended; once the configured range
(TAXI_END_MONTH) is behind them they keep naming its last partition under the same run key,
which the daemon launches only once.
"""

import dagster as dg
from dagster_dbt import build_schedule_from_dbt_selection

from taxi_pipeline.assets.dbt import dbt_analytics
from taxi_pipeline.jobs import daily_metrics_job, trip_update_job, weekly_update_job

RUNNING = dg.DefaultScheduleStatus.RUNNING

# The TLC publishes a month's file some weeks after it ends; the 5th is the course's choice.
trip_update_schedule = dg.build_schedule_from_partitioned_job(
    trip_update_job, day_of_month=5, hour_of_day=0, default_status=RUNNING
)

daily_metrics_schedule = dg.build_schedule_from_partitioned_job(
    daily_metrics_job, hour_of_day=6, default_status=RUNNING
)

weekly_update_schedule = dg.build_schedule_from_partitioned_job(
    weekly_update_job, day_of_week=1, hour_of_day=7, default_status=RUNNING
)

# The unpartitioned dbt models (staging and location_metrics) and their tests, every morning.
dbt_models_schedule = build_schedule_from_dbt_selection(
    [dbt_analytics],
    job_name="dbt_models_job",
    cron_schedule="0 5 * * *",
    dbt_select="fqn:*",
    default_status=RUNNING,
)
