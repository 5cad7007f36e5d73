"""Time partitions of the pipeline, all spanning the configured month range.

Trips arrive one file per month, so ingestion is monthly; `daily_metrics` is daily and
`trips_by_week` weekly. All three cover exactly TAXI_START_MONTH..TAXI_END_MONTH, so a
backfill of "everything" means the same period whichever asset it starts from.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple

import dagster as dg

from taxi_pipeline.settings import Settings


class Partitions(NamedTuple):
    monthly: dg.MonthlyPartitionsDefinition
    weekly: dg.WeeklyPartitionsDefinition
    daily: dg.DailyPartitionsDefinition


def month_bounds(settings: Settings) -> tuple[str, str | None]:
    """First day of the start month and first day after the end month (None: open-ended)."""
    start = f"{settings.start_month}-01"
    if settings.end_month is None:
        return start, None
    year, month = (int(part) for part in settings.end_month.split("-"))
    after = date(year + month // 12, month % 12 + 1, 1)
    return start, after.isoformat()


def build_partitions(settings: Settings) -> Partitions:
    start, end = month_bounds(settings)
    return Partitions(
        monthly=dg.MonthlyPartitionsDefinition(start_date=start, end_date=end),
        weekly=dg.WeeklyPartitionsDefinition(start_date=start, end_date=end),
        daily=dg.DailyPartitionsDefinition(start_date=start, end_date=end),
    )
