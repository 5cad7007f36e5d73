"""How far the automatic fill of the configured range has come, where a newcomer looks.

After `docker compose up -d` the daemon fills the range on its own, in several runs over a few
minutes. `fill_progress_sensor` (running by default) answers "what is done, what is left, how
long still" as the skip reason of each of its ticks, on the Automation page of the Dagster UI
(Automation -> fill_progress_sensor); the same line in a terminal:

    docker compose exec user_code python -m taxi_pipeline.progress --watch

It only reads the instance: the assets the automation fills (every materializable asset that has
an automation condition) and, of each, the partitions of the configured range that have a
materialization; the runs of the fill (in progress, queued, failed). It requests no run.
A month the TLC has not published (no observation of it by tlc_site_sensor) is not part of the
fill: its partitions, and the days and weeks that start in it, are left out of the counts and
named as waiting, so a range that reaches past the TLC's latest month still ends "filled".

The time left is extrapolated from the share done so far, counted per asset (the mean over assets
of each one's share of partitions), not per partition nor from stage durations. Partitions are a
bad unit: one run builds all ~90 days of `daily_metrics`, which would look like most of the work.
Measured stage durations are not known before a stage ran once, and differ with the source and
the size of a month; on the sample source the fill's runs cost about the same each (a container
start and the code location's load dominate), and most assets take one such run. Rough, hence
"about".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    PARTITION_NAME_TAG,
)

from taxi_pipeline.assets.tlc_site import TRIP_FILES

SENSOR_NAME = "fill_progress_sensor"
FILLED = "filled: the dashboards show data"
# How many incomplete assets the line names (the rest are counted).
SHOWN_MISSING = 4
_S = dg.DagsterRunStatus
# queued (waiting for the run queue) or on its way: the runs the line names
UNFINISHED = [_S.QUEUED, _S.NOT_STARTED, _S.STARTING, _S.STARTED, _S.CANCELING]


@dataclass(frozen=True)
class AssetProgress:
    key: str
    done: int
    expected: int  # 1 for an unpartitioned asset

    @property
    def complete(self) -> bool:
        return self.done >= self.expected

    @property
    def share(self) -> float:
        """Share of its partitions materialized; 1 when none is expected (every partition of a
        monthly asset waits for the TLC, as on a new stack before the site's first look)."""
        return min(self.done, self.expected) / self.expected if self.expected else 1.0


@dataclass(frozen=True)
class FillProgress:
    assets: Sequence[AssetProgress]
    running: Sequence[str] = ()  # "asset[, asset] (partitions)" of each run in progress
    queued_runs: int = 0
    failed_runs: int = 0
    runs: int = 0  # runs of the fill so far
    elapsed: float | None = None  # seconds since the fill's first run was created
    superset_url: str = ""
    waiting: Sequence[str] = ()  # months not published by the TLC yet ("2023-03")

    @property
    def share_done(self) -> float:
        """Mean over assets of each one's share of partitions materialized (0..1)."""
        if not self.assets:
            return 1.0
        return sum(a.share for a in self.assets) / len(self.assets)

    @property
    def filled(self) -> bool:
        return all(a.complete for a in self.assets)

    @property
    def seconds_left(self) -> float | None:
        share = self.share_done
        if self.filled or not self.elapsed or share <= 0:
            return None
        return self.elapsed * (1 - share) / share

    def message(self) -> str:
        complete = sum(a.complete for a in self.assets)
        done = sum(min(a.done, a.expected) for a in self.assets)
        expected = sum(a.expected for a in self.assets)
        counts = f"{complete}/{len(self.assets)} assets, {done}/{expected} partitions"
        took = f" in {duration(self.elapsed)}" if self.elapsed is not None else ""
        if self.filled:
            waiting = f"; {self._waiting()}" if self.waiting else ""
            return f"{FILLED} in Superset, {self.superset_url} ({counts}; filled{took} by " + (
                f"{self.runs} runs){waiting}"
            )
        missing = [a for a in self.assets if not a.complete]
        named = ", ".join(
            f"{a.key} {a.done}/{a.expected}" if a.expected > 1 else a.key
            for a in missing[:SHOWN_MISSING]
        )
        more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
        parts = [f"filling: {counts} done; left: {named}{more}"]
        if self.waiting:
            parts.append(self._waiting())
        if self.running:
            parts.append("running: " + "; ".join(self.running))
        if self.queued_runs:
            parts.append(f"{self.queued_runs} run(s) queued")
        if self.failed_runs:
            parts.append(
                f"{self.failed_runs} run(s) FAILED: open Runs, fix the cause, re-execute (a "
                "failed partition is retried on its own only once a day, after 04:00 UTC)"
            )
        if self.elapsed is None:
            parts.append("no run yet: the automation_sensor requests the first within a minute")
        else:
            left = self.seconds_left
            estimate = (
                f"about {duration(left)} left (extrapolated from the share done)"
                if left is not None
                else "time left: estimated once the first asset landed"
            )
            parts.append(f"{self.runs} run(s) in {duration(self.elapsed)}, {estimate}")
        return "; ".join(parts)

    def _waiting(self) -> str:
        months = list(self.waiting)
        named = ", ".join(months[:SHOWN_MISSING])
        more = f" and {len(months) - SHOWN_MISSING} more" if len(months) > SHOWN_MISSING else ""
        return f"waiting for the TLC to publish {named}{more} (loaded when it appears)"


def duration(seconds: float | None) -> str:
    seconds = round(seconds or 0)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def filled_assets(asset_graph: BaseAssetGraph) -> list[dg.AssetKey]:
    """The assets the automation fills (materializable, with an automation condition), upstream
    first: what is left then reads in the order it will be built."""
    return [
        key
        for key in asset_graph.toposorted_asset_keys
        if asset_graph.get(key).is_materializable and asset_graph.get(key).automation_condition
    ]


def waiting_months(
    instance: dg.DagsterInstance, asset_graph: BaseAssetGraph, now: datetime
) -> list[str]:
    """The months of the range without an observation of their TLC file: not published yet."""
    partitions_def = asset_graph.get(TRIP_FILES).partitions_def
    months = partitions_def.get_partition_keys(current_time=now)
    observed, cursor = set(), None
    while True:  # observations are recorded only when a file changes: few per month
        result = instance.fetch_observations(
            dg.AssetRecordsFilter(asset_key=TRIP_FILES), limit=1000, cursor=cursor
        )
        observed |= {record.partition_key for record in result.records}
        if not result.has_more:
            break
        cursor = result.cursor
    return [month[:7] for month in months if month not in observed]


def asset_progress(
    instance: dg.DagsterInstance,
    asset_graph: BaseAssetGraph,
    now: datetime,
    waiting: Sequence[str] = (),
) -> list[AssetProgress]:
    """`waiting`: months left out of the fill; so are the partitions (days, weeks) that start
    in one of them (every time partition key starts with its first day, "YYYY-MM-DD")."""
    keys = filled_assets(asset_graph)
    unpartitioned = [key for key in keys if not asset_graph.get(key).partitions_def]
    # one query for every unpartitioned asset, one per partitioned asset
    records = {r.asset_entry.asset_key: r for r in instance.get_asset_records(unpartitioned)}
    progress = []
    for key in keys:
        partitions_def = asset_graph.get(key).partitions_def
        if partitions_def is None:
            record = records.get(key)
            landed = bool(record and record.asset_entry.last_materialization_record)
            progress.append(AssetProgress(key.to_user_string(), int(landed), 1))
            continue
        expected = {
            key
            for key in partitions_def.get_partition_keys(
                current_time=now, dynamic_partitions_store=instance
            )
            if key[:7] not in waiting
        }
        done = len(expected & instance.get_materialized_partitions(key))
        progress.append(AssetProgress(key.to_user_string(), done, len(expected)))
    return progress


def describe_run(run: dg.DagsterRun) -> str:
    assets = ", ".join(sorted(key.to_user_string() for key in run.asset_selection or ()))
    what = assets or run.job_name
    tags = run.tags
    if ASSET_PARTITION_RANGE_START_TAG in tags:
        start, end = tags[ASSET_PARTITION_RANGE_START_TAG], tags.get(ASSET_PARTITION_RANGE_END_TAG)
        return f"{what} ({start}...{end})"
    if PARTITION_NAME_TAG in tags:
        return f"{what} ({tags[PARTITION_NAME_TAG]})"
    return what


def fill_progress(
    instance: dg.DagsterInstance,
    asset_graph: BaseAssetGraph,
    superset_url: str,
    since: float = 0.0,
    now: datetime | None = None,
) -> FillProgress:
    """The fill's progress, its runs counted from `since` (a timestamp: when the previous fill
    completed, so that a month added to the range later times that fill alone)."""
    now = now or datetime.now(UTC)
    waiting = waiting_months(instance, asset_graph, now)
    assets = asset_progress(instance, asset_graph, now, waiting)
    return with_runs(instance, assets, superset_url, since, now, waiting)


def with_runs(
    instance: dg.DagsterInstance,
    assets: Sequence[AssetProgress],
    superset_url: str,
    since: float,
    now: datetime,
    waiting: Sequence[str] = (),
) -> FillProgress:
    after = datetime.fromtimestamp(since, UTC) if since else None
    first = instance.get_run_records(
        dg.RunsFilter(created_after=after), limit=1, order_by="create_timestamp", ascending=True
    )
    in_progress = instance.get_runs(dg.RunsFilter(statuses=UNFINISHED, created_after=after))
    failed = dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE], created_after=after)
    return FillProgress(
        assets=assets,
        running=[describe_run(r) for r in in_progress if r.status != dg.DagsterRunStatus.QUEUED],
        queued_runs=sum(r.status == dg.DagsterRunStatus.QUEUED for r in in_progress),
        failed_runs=instance.get_runs_count(failed),
        runs=instance.get_runs_count(dg.RunsFilter(created_after=after)),
        elapsed=now.timestamp() - first[0].create_timestamp.timestamp() if first else None,
        superset_url=superset_url,
        waiting=waiting,
    )


def build_fill_progress_sensor(superset_url: str) -> dg.SensorDefinition:
    """`superset_url`: where the user opens Superset (settings: TAXI_SUPERSET_URL)."""

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=15,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Reports, as each tick's message, how far the automatic fill of the "
        "configured range has come: assets and partitions done and left, the runs in progress, "
        "the time so far and a rough time left. Requests no run.",
    )
    def fill_progress_sensor(context: dg.SensorEvaluationContext):
        """Cursor: whether the range was filled at the last tick, when the last fill completed
        (a later fill's runs count from there) and the last message (logged when it changes)."""
        state = json.loads(context.cursor) if context.cursor else {}
        now = datetime.now(UTC)
        graph = context.repository_def.asset_graph
        waiting = waiting_months(context.instance, graph, now)
        assets = asset_progress(context.instance, graph, now, waiting)
        if state.get("filled") and all(a.complete for a in assets):
            # Still filled: the completed fill's line, with no run query (cheap from now on).
            return dg.SkipReason(state["message"])
        since = state.get("filled_at", 0.0)
        progress = with_runs(context.instance, assets, superset_url, since, now, waiting)
        message = progress.message()
        if message != state.get("message"):
            context.log.info(message)
        filled_at = now.timestamp() if progress.filled else since
        context.update_cursor(
            json.dumps({"filled": progress.filled, "filled_at": filled_at, "message": message})
        )
        return dg.SkipReason(message)

    return fill_progress_sensor


def main(argv: list[str] | None = None) -> int:
    """The sensor's line in a terminal, computed the same way from the same instance."""
    parser = argparse.ArgumentParser(
        prog="python -m taxi_pipeline.progress",
        description="How far the automatic fill of the configured range has come.",
    )
    parser.add_argument(
        "--watch", action="store_true", help="print a line whenever it changes, until filled"
    )
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between looks")
    args = parser.parse_args(argv)

    # the code location as the code server loads it, from the same settings
    from taxi_pipeline.definitions import build_defs
    from taxi_pipeline.settings import load_settings

    settings = load_settings()
    asset_graph = build_defs(settings).resolve_asset_graph()
    superset_url = settings.superset_url
    last = None
    with dg.DagsterInstance.get() as instance:
        while True:
            progress = fill_progress(instance, asset_graph, superset_url)
            if (line := progress.message()) != last:
                print(f"{datetime.now():%H:%M:%S} {line}", flush=True)
                last = line
            if progress.filled or not args.watch:
                return 0
            time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
