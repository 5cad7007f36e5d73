"""The TLC's published files as observable source assets, and the sensor that observes them.

The platform does not guess from the calendar which months exist: `tlc_site_sensor` asks the
site (cheap HEAD requests, `sources/publication.py`) about the zone lookup and every month of the
range, and records an `AssetObservation` whose data version changes exactly when the file does:

- a month the TLC has not published has no observation, so its partition of
  `tlc/yellow_tripdata` is missing and `taxi_trips_file` waits for it (`keep_fresh()` requests
  nothing while an upstream is missing): the UI shows it waiting, the tick names it, no run fails;
- a month that appears gets its first observation, and the automation downloads, loads, builds,
  audits and publishes it;
- a re-published file gets a new data version, which for an observable asset is what
  "updated" means to the automation: exactly that month is downloaded again, and only what
  depends on it is rebuilt.

An observation is recorded only when the version differs from the last one recorded, so a site
that does not change adds nothing to the event log.

A site that cannot be observed skips the tick with the reason (a CDN's brief outage is common and
harmless: the sensor asks again on its next tick). Once it has been unobservable for longer than
TAXI_ALERT_SOURCE_DOWN_AFTER, the tick fails instead: the sensor turns red in the UI and
`alert_sensor` notifies, once, and again when the site answers.

The observe functions below do the same work as the sensor when someone clicks "Observe" in the
UI.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import dagster as dg
from dagster._core.definitions.data_version import DATA_VERSION_TAG, extract_data_version_from_entry

from taxi_pipeline.resources import TaxiDataSource
from taxi_pipeline.sources.publication import ObservationError, Published

TRIP_FILES = dg.AssetKey(["tlc", "yellow_tripdata"])
ZONE_LOOKUP = dg.AssetKey(["tlc", "taxi_zone_lookup"])
GROUP = "tlc_site"
# The TLC publishes monthly, about two months late: every 15 minutes notices a new or corrected
# file soon enough, and costs one HEAD request per month of the range.
OBSERVE_INTERVAL_SECONDS = 15 * 60


class SourceUnobservable(Exception):
    """The TLC's site has not been observable for longer than TAXI_ALERT_SOURCE_DOWN_AFTER."""


@dataclass
class SiteState:
    """One look at the site: the published files by partition key (None: the zone lookup)."""

    published: dict[str | None, Published] = field(default_factory=dict)
    waiting: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _month(partition_key: str) -> str:
    return partition_key[:7]  # monthly partition keys are the first day: "2023-01-01"


def look_at_site(taxi_data: TaxiDataSource, partition_keys: Sequence[str]) -> SiteState:
    state = SiteState()
    zones, months = taxi_data.observe([_month(key) for key in partition_keys])
    if isinstance(zones, ObservationError):
        state.errors.append(f"{zones} The months were not asked either.")
        return state
    state.published[None] = zones
    for key in partition_keys:
        answer = months[_month(key)]
        if isinstance(answer, ObservationError):
            state.errors.append(str(answer))
        elif answer is None:
            state.waiting.append(_month(key))
        else:
            state.published[key] = answer
    return state


def _observation(key: dg.AssetKey, partition: str | None, file: Published) -> dg.AssetObservation:
    return dg.AssetObservation(
        key,
        partition=partition,
        tags={DATA_VERSION_TAG: file.data_version},
        metadata=file.as_metadata(),
    )


def _recorded_version(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None):
    record = instance.get_latest_data_version_record(key, is_source=True, partition_key=partition)
    version = extract_data_version_from_entry(record.event_log_entry) if record else None
    return version.value if version else None


def _summary(state: SiteState, months: int, changed: list[str | None]) -> str:
    published = sum(1 for key in state.published if key is not None)
    names = ["zone lookup" if key is None else _month(key) for key in changed]
    parts = [
        f"{published} of {months} months published",
        f"new or changed: {', '.join(names)}" if names else "nothing new or changed",
    ]
    if state.waiting:
        parts.append(
            f"waiting for {', '.join(state.waiting)} (not published yet: taxi_trips_file waits, "
            "nothing fails)"
        )
    caveats = {file.caveat for file in state.published.values() if file.caveat}
    parts += [f"note: {caveat}" for caveat in sorted(caveats)]
    parts += [f"could not observe: {error}" for error in state.errors]
    return "; ".join(parts) + "."


def _unobservable_for(since: float, now: float) -> str:
    minutes = int((now - since) // 60)
    start = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"{minutes // 60}h{minutes % 60:02d}m (since {start})"


def build_tlc_site(
    monthly: dg.MonthlyPartitionsDefinition, down_after: timedelta
) -> tuple[dg.SourceAsset, dg.SourceAsset, dg.SensorDefinition]:
    """The two observable source assets over the month range, and their sensor, whose tick fails
    once the site has been unobservable for longer than `down_after`."""

    @dg.observable_source_asset(
        key=TRIP_FILES,
        partitions_def=monthly,
        group_name=GROUP,
        description="The TLC's published yellow-taxi trip file of each month, as the site "
        "describes it (ETag, Last-Modified, size). A month without an observation is not "
        "published yet. Observed by tlc_site_sensor.",
    )
    def yellow_tripdata(taxi_data: TaxiDataSource) -> dg.DataVersionsByPartition:
        state = look_at_site(taxi_data, monthly.get_partition_keys())
        if state.errors:
            raise dg.Failure(description=" | ".join(state.errors))
        return dg.DataVersionsByPartition(
            {key: file.data_version for key, file in state.published.items() if key is not None}
        )

    @dg.observable_source_asset(
        key=ZONE_LOOKUP,
        group_name=GROUP,
        description="The TLC's published taxi zone lookup (CSV), as the site describes it. "
        "Observed by tlc_site_sensor.",
    )
    def taxi_zone_lookup(taxi_data: TaxiDataSource) -> dg.ObserveResult:
        state = look_at_site(taxi_data, [])
        if None not in state.published:
            raise dg.Failure(description=" | ".join(state.errors))
        file = state.published[None]
        return dg.ObserveResult(
            data_version=dg.DataVersion(file.data_version), metadata=file.as_metadata()
        )

    @dg.sensor(
        name="tlc_site_sensor",
        minimum_interval_seconds=OBSERVE_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Observes the TLC site: records a new data version of tlc/yellow_tripdata "
        "(per month) or tlc/taxi_zone_lookup when a file is published or re-published; the "
        "automation then loads exactly that file. The tick names the months still waiting.",
    )
    def tlc_site_sensor(context: dg.SensorEvaluationContext, taxi_data: TaxiDataSource):
        """Cursor: since when the site has been unobservable (absent while it answers)."""
        partition_keys = monthly.get_partition_keys()
        state = look_at_site(taxi_data, partition_keys)
        now = time.time()
        cursor = {}
        if state.errors:
            since = json.loads(context.cursor or "{}").get("unobservable_since", now)
            if now - since > down_after.total_seconds():
                # A failed tick keeps the previous cursor, which holds `since` already.
                raise SourceUnobservable(
                    f"The TLC's site has not been observable for {_unobservable_for(since, now)}, "
                    f"longer than TAXI_ALERT_SOURCE_DOWN_AFTER ({down_after}): "
                    + " | ".join(state.errors)
                )
            cursor["unobservable_since"] = since
        events, changed = [], []
        for partition, file in state.published.items():
            key = ZONE_LOOKUP if partition is None else TRIP_FILES
            if _recorded_version(context.instance, key, partition) != file.data_version:
                events.append(_observation(key, partition, file))
                changed.append(partition)
        summary = _summary(state, len(partition_keys), changed)
        if state.errors:
            context.log.warning(summary)
        else:
            context.log.info(summary)
        return dg.SensorResult(asset_events=events, skip_reason=summary, cursor=json.dumps(cursor))

    return yellow_tripdata, taxi_zone_lookup, tlc_site_sensor
