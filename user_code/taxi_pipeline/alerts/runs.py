"""What a finished run was about, read from its own event log: the assets and partitions it
targeted, what it materialized, the checks that failed, and the first lines of its error.

Dagster has no public API that lists a run's events by type: `instance.all_logs(run_id, of_type)`
is what Dagster's own `RunFailureSensorContext.get_step_failure_events()` calls, and
tests/test_alerts.py::test_the_instance_apis_the_alerts_read_still_exist guards it (and the other
non-public reads of this package) against an upgrade.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import dagster as dg

from taxi_pipeline.alerts.notification import first_lines
from taxi_pipeline.progress import describe_run

# Run tags Dagster sets (dagster._core.storage.tags; the values are part of its stable UI and API).
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG, RANGE_END_TAG = (
    "dagster/asset_partition_range_start",
    "dagster/asset_partition_range_end",
)
BACKFILL_TAG = "dagster/backfill"
SENSOR_TAG, SCHEDULE_TAG = "dagster/sensor_name", "dagster/schedule_name"
AUTOMATION_TAG = "dagster/from_automation_condition"
_E = dg.DagsterEventType
_READ = {
    _E.STEP_FAILURE,
    _E.RUN_FAILURE,
    _E.ASSET_MATERIALIZATION,
    _E.ASSET_CHECK_EVALUATION,
}
# Dagster wraps a step's or a tick's exception in these; the user's own error is their cause.
_WRAPPERS = (
    "DagsterExecutionStepExecutionError",
    "DagsterUserCodeExecutionError",
    "SensorExecutionError",
    "ScheduleExecutionError",
    "RunStatusSensorExecutionError",
)


def target(asset: str, partition: str | None) -> str:
    """One asset partition as a key of the alert state: "taxi_trips_file|2023-01-01"."""
    return f"{asset}|{partition or ''}"


def label(target_key: str) -> str:
    asset, _, partition = target_key.partition("|")
    return f"{asset} {partition}" if partition else asset


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    what: str  # assets (or job) and partitions, as the progress sensor names a run
    launched_by: str
    backfill: str | None
    # "asset|partition" the run was meant to produce, and those it did produce
    targets: tuple[str, ...]
    materialized: tuple[str, ...]
    failed_checks: tuple[str, ...]  # "asset:check" of error severity (blocking dbt tests)
    error: str  # first lines of the first error ("" for a success)

    @property
    def failed_targets(self) -> tuple[str, ...]:
        done = set(self.materialized)
        return tuple(t for t in self.targets if t not in done)


def run_partitions(run: dg.DagsterRun, asset_graph, asset: dg.AssetKey) -> list[str | None]:
    """The partitions of `asset` a run covered: one, a range (a single-run backfill), or none."""
    tags = run.tags
    if PARTITION_TAG in tags:
        return [tags[PARTITION_TAG]]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        partitions_def = asset_graph.get(asset).partitions_def if asset_graph.has(asset) else None
        if partitions_def is None:
            return [f"{tags[RANGE_START_TAG]}…{tags[RANGE_END_TAG]}"]
        return list(
            partitions_def.get_partition_keys_in_range(
                dg.PartitionKeyRange(tags[RANGE_START_TAG], tags[RANGE_END_TAG])
            )
        )
    return [None]


def launched_by(run: dg.DagsterRun) -> str:
    tags = run.tags
    if BACKFILL_TAG in tags:
        return f"backfill {tags[BACKFILL_TAG]}"
    if tags.get(AUTOMATION_TAG) == "true":
        return f"the automation ({tags.get(SENSOR_TAG, 'automation_sensor')})"
    if SENSOR_TAG in tags:
        return f"sensor {tags[SENSOR_TAG]}"
    if SCHEDULE_TAG in tags:
        return f"schedule {tags[SCHEDULE_TAG]}"
    return "hand (the UI or the API)"


def read_outcome(instance: dg.DagsterInstance, run: dg.DagsterRun, asset_graph) -> RunOutcome:
    # upstream first: the first target is where a reader starts looking
    order = {key: i for i, key in enumerate(asset_graph.toposorted_asset_keys)}
    targets = [
        target(key.to_user_string(), partition)
        for key in sorted(run.asset_selection or (), key=lambda k: order.get(k, len(order)))
        for partition in run_partitions(run, asset_graph, key)
    ] or [target(run.job_name, run.tags.get(PARTITION_TAG))]
    materialized, failed_checks, errors = [], [], []
    for entry in instance.all_logs(run.run_id, of_type=_READ):
        event_type = entry.dagster_event_type
        if event_type == _E.ASSET_MATERIALIZATION:
            done = entry.asset_materialization
            materialized.append(target(done.asset_key.to_user_string(), done.partition))
        elif event_type == _E.ASSET_CHECK_EVALUATION:
            check = entry.asset_check_evaluation
            # dbt tests of error severity: dagster-dbt makes them blocking checks, the gate of
            # the published snapshot (assets/publish.py)
            if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
                failed_checks.append(f"{check.asset_key.to_user_string()}:{check.check_name}")
        elif event_type == _E.STEP_FAILURE:
            error = entry.dagster_event.step_failure_data.error
            errors.append(user_error(error) if error else entry.message)
        elif event_type == _E.RUN_FAILURE:
            errors.append(entry.dagster_event.message or entry.message)
    return RunOutcome(
        run_id=run.run_id,
        what=describe_run(run),
        launched_by=launched_by(run),
        backfill=run.tags.get(BACKFILL_TAG),
        targets=tuple(targets),
        materialized=tuple(dict.fromkeys(materialized)),
        failed_checks=tuple(sorted(set(failed_checks))),
        # the step's own error says more than the run's "Steps failed: [...]"
        error=first_lines(next((e for e in errors if e), "")),
    )


def user_error(error) -> str:
    """The message of the user's own exception inside Dagster's wrappers (SerializableErrorInfo)."""
    while error.cause is not None and error.cls_name in _WRAPPERS:
        error = error.cause
    # "dagster._core.definitions.events.Failure: Not publishing ..." -> "Failure: Not publishing"
    return re.sub(r"^(?:\w+\.)+(\w+): ", r"\1: ", error.message.strip())
