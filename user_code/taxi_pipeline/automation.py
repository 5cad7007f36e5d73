"""How assets keep themselves fresh without anyone clicking.

Dagster's `eager()` and `on_missing()` deliberately ignore partitions that were already missing
when the condition was first applied, and look only at the latest time partition. This
platform's default range is history (2023-01..2023-03) that a brand-new stack must fill on its
own, so assets use `keep_fresh()` instead, over the whole configured range:

- a partition that is missing, and whose last run did not fail, is requested; one whose last run
  failed is tried again once a day (RETRY_FAILED_CRON), or at once after an upstream change or
  by hand;
- a partition whose upstream was updated since it was last handled is requested again;
- never while an input has nothing yet, has a partition on its way, or is in progress, nor
  while it is in progress itself. A partition that is not coming (its month is not published,
  or a run on the way failed) does not hold back what can be built from the others.

The source of it all is `tlc/yellow_tripdata` and `tlc/taxi_zone_lookup`, observed on the TLC's
site (assets/tlc_site.py): a month the TLC has not published is a missing upstream, so its
download waits instead of failing, and a re-published file is an upstream update.
"""

import dagster as dg

# The month loads: a day or a week depends on the months it overlaps (Dagster's time-window
# mapping from monthly to daily or weekly partitions).
MONTH_LOADS = dg.AssetDep("taxi_trips", partition_mapping=dg.TimeWindowPartitionMapping())


AC = dg.AutomationCondition
# A missing partition whose last run failed is requested again on the first tick after this: a
# server error that outlasted a download's retries must not leave a month missing for good on an
# unattended deployment, and a file that is really bad fails once a day, not on every tick.
RETRY_FAILED_CRON = "0 4 * * *"
# How far a missing partition is followed upstream to learn whether it is on its way: a mart's
# day -> the month's load -> the month's file -> the TLC's observation of it.
SOURCE_LEVELS = 3


def _not_coming(levels: int = SOURCE_LEVELS) -> dg.AutomationCondition:
    """Missing, and nothing will fill it without a change outside: the TLC has not published it
    (its source partition has no observation), or a run on the way to it failed."""
    has_no_inputs = ~AC.any_deps_match(AC.missing() | ~AC.missing())
    condition = AC.missing() & has_no_inputs
    for _ in range(levels):
        condition = AC.missing() & (
            has_no_inputs | AC.execution_failed() | AC.any_deps_match(condition)
        )
    return condition.with_label("not_coming")


def _inputs_not_ready() -> dg.AutomationCondition:
    """An input has nothing at all yet, or a partition of it is on its way (missing but neither
    waiting for the TLC nor failed). A partition that is not coming does not hold the others
    back: an unpublished month must not keep `stg_trips` or the snapshot from the months that
    are there. Inputs requested in this tick for the same run count as present."""
    coming = AC.missing() & ~AC.will_be_requested() & ~_not_coming()
    has_something = ~AC.missing() | AC.will_be_requested()
    return (AC.any_deps_match(coming) | ~AC.all_deps_match(has_something)).with_label(
        "inputs_not_ready"
    )


def keep_fresh(ignore_updates_of: dg.AssetSelection | None = None) -> dg.AutomationCondition:
    """`ignore_updates_of`: inputs whose updates say nothing about which partitions changed.

    `daily_metrics` and `trips_by_week` read the trips through the unpartitioned `stg_trips`
    view; every update of it would request every day and every week of the range. They ignore
    it and follow `MONTH_LOADS` instead, so a re-loaded month rebuilds only its own days and
    weeks.
    """
    updated = AC.any_deps_updated()
    if ignore_updates_of is not None:
        updated = updated.ignore(ignore_updates_of)
    missing_not_failed = AC.missing() & ~AC.execution_failed()
    retry_failed = (
        AC.missing() & AC.execution_failed() & AC.cron_tick_passed(RETRY_FAILED_CRON)
    ).with_label("retry_failed_daily")
    return (
        (missing_not_failed | retry_failed | updated.since_last_handled())
        & ~_inputs_not_ready()
        & ~AC.any_deps_in_progress()
        & ~AC.in_progress()
    ).with_label("keep_fresh")


def inputs_settled() -> dg.AutomationCondition:
    """Neither an input nor an input's input was updated since the previous tick.

    For the snapshot, which reads every mart. After a month is re-loaded, the automation
    requests `stg_trips` and `location_metrics` (one unpartitioned run, which the snapshot would
    join) and the month's `daily_metrics` days (a daily run) in the same tick. The snapshot would
    then publish before the days, and Dagster drops the days' update that lands in the tick
    where the snapshot counts as handled: the served numbers would stay stale. Waiting until the
    two levels above it are quiet for a tick (30 s) publishes once, after everything.
    """
    recently_updated = AC.newly_updated() | AC.any_deps_match(AC.newly_updated())
    return (~AC.any_deps_match(recently_updated)).with_label("inputs_settled")
