"""Freshness policies, in Dagster's own terms, for every asset a user reads.

Dagster's freshness daemon (on by default; `freshness:` in dagster.yaml) evaluates them every
30 s: the UI shows each asset fresh or stale, and `alert_sensor` sends a notification when the
published snapshot turns stale. The values follow how the data arrives:

- The snapshot (`published_warehouse`), the unpartitioned mart `location_metrics` and the chart
  built from it (`airport_trips`) are rebuilt every morning: `dbt_models_job_schedule` builds the
  unpartitioned models at 05:00 UTC, and the automation rebuilds the chart and republishes the
  snapshot right after. So they are stale once older than a day and the time a morning's build
  takes: TAXI_SNAPSHOT_MAX_AGE, 26 h by default. A stale snapshot means that morning's build or
  its publication failed (a blocking dbt test, a failed run): Superset then serves old numbers.
- The day- and week-partitioned marts (`daily_metrics`, `trips_by_week`) change only when a month
  lands. The TLC publishes a month about two months after it ends, one month after the other,
  now and then a few weeks late: with an open range (TAXI_END_MONTH=latest) a new month is due
  about every 30 days, so 45 days without one (TAXI_MONTHLY_MAX_AGE) means the TLC is late or
  the loading is broken. With a closed range no new month can arrive and their age says nothing,
  so they get no policy (a re-published month still rebuilds them).

A time window, not a cron policy: it does not need to know the schedule's hour, which a user may
change, and "at most N old" is what a reader of a dashboard cares about.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from taxi_pipeline.settings import Settings

REBUILT_DAILY = ("published_warehouse", "location_metrics", "airport_trips")
REBUILT_MONTHLY = ("daily_metrics", "trips_by_week")


def policies(settings: Settings) -> dict[str, dg.FreshnessPolicy]:
    """Asset name -> its policy."""
    daily = dg.FreshnessPolicy.time_window(fail_window=settings.freshness.snapshot_max_age)
    chosen = dict.fromkeys(REBUILT_DAILY, daily)
    if settings.end_month is None:
        monthly = dg.FreshnessPolicy.time_window(fail_window=settings.freshness.monthly_max_age)
        chosen |= dict.fromkeys(REBUILT_MONTHLY, monthly)
    return chosen


def with_freshness_policies(
    assets: Sequence[dg.AssetsDefinition | dg.SourceAsset], settings: Settings
) -> list[dg.AssetsDefinition | dg.SourceAsset]:
    """`assets` with the policies applied (Dagster's `apply_freshness_policy` on each spec)."""
    chosen = policies(settings)

    def apply(spec: dg.AssetSpec) -> dg.AssetSpec:
        policy = chosen.get(spec.key.to_user_string())
        return dg.apply_freshness_policy(spec, policy) if policy else spec

    # source assets (the TLC's files) are observed, never materialized: no freshness of theirs
    sources = [a for a in assets if isinstance(a, dg.SourceAsset)]
    materialized = [a for a in assets if not isinstance(a, dg.SourceAsset)]
    return [*sources, *dg.map_asset_specs(apply, materialized)]
