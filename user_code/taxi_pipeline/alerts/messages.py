"""The words of each notification: what failed, the asset and partition, the first lines of the
error, how often it failed since when, and links into the Dagster UI (TAXI_DAGSTER_URL)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlencode

from taxi_pipeline.alerts.notification import Link, Notification
from taxi_pipeline.alerts.runs import RunOutcome, label

# How many failing partitions a message spells out with their streak (the rest are counted).
SHOWN_STREAKS = 5
# The code location's name, as workspace.yaml and [tool.dg.project] name it: the UI's paths to a
# sensor or schedule carry it.
LOCATION = "taxi_pipeline"


@dataclass(frozen=True)
class Links:
    dagster_url: str

    def run(self, run_id: str) -> Link:
        return Link(f"run {run_id[:8]}", f"{self.dagster_url}/runs/{run_id}")

    def asset(self, target_key: str) -> Link:
        asset, _, partition = target_key.partition("|")
        url = f"{self.dagster_url}/assets/{quote(asset)}"
        if partition and "…" not in partition:
            url += "?" + urlencode({"view": "partitions", "partition": partition})
        return Link(f"asset {asset}", url)

    def instigator(self, kind: str, name: str) -> Link:
        return Link(f"{kind} {name}", f"{self.dagster_url}/locations/{LOCATION}/{kind}s/{name}")


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    return f"{hours} h" if hours < 48 else f"{hours // 24} days"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _streaks(targets: Sequence[str], failing: Mapping[str, list]) -> list[str]:
    """ "3rd failure of taxi_trips_file 2023-01-01 since ..." for the first SHOWN_STREAKS."""
    lines = []
    for key in targets[:SHOWN_STREAKS]:
        count, since = failing.get(key, (1, None))
        if count > 1 and since is not None:
            lines.append(f"{ordinal(count)} failure of {label(key)} since {when(since)}")
        else:
            lines.append(f"first failure of {label(key)}")
    if len(targets) > SHOWN_STREAKS:
        lines.append(f"and {len(targets) - SHOWN_STREAKS} more partitions")
    return lines


def _checks(outcome: RunOutcome) -> list[str]:
    if not outcome.failed_checks:
        return []
    return [
        "Failed dbt tests (error severity, so blocking): "
        + ", ".join(outcome.failed_checks)
        + ". The snapshot is not published while they fail: Superset keeps serving the last "
        "good one."
    ]


def run_failed(outcome: RunOutcome, failing: Mapping[str, list], links: Links) -> Notification:
    targets = outcome.failed_targets or outcome.targets
    return Notification(
        kind="failure",
        title=f"Run failed: {outcome.what}",
        lines=(
            f"Launched by {outcome.launched_by}.",
            *_streaks(targets, failing),
            *_checks(outcome),
            f"Error: {outcome.error or '(no error message recorded; see the run)'}",
        ),
        links=(links.run(outcome.run_id), links.asset(targets[0])),
    )


def runs_failed(
    outcomes: Sequence[RunOutcome],
    failing: Mapping[str, list],
    links: Links,
    backfill: str | None = None,
) -> Notification:
    """A burst: several failed runs (of one backfill, or seen in one tick) in one message."""
    if len(outcomes) == 1 and backfill is None:
        return run_failed(outcomes[0], failing, links)
    targets = [t for o in outcomes for t in (o.failed_targets or o.targets)]
    checks = sorted({check for o in outcomes for check in o.failed_checks})
    where = f"Backfill {backfill}: " if backfill else ""
    lines = [f"{len(targets)} asset partitions did not materialize.", *_streaks(targets, failing)]
    if checks:
        lines.append("Failed dbt tests (blocking, the snapshot is held): " + ", ".join(checks))
    first_error = next((o.error for o in outcomes if o.error), "")
    lines.append(f"First error: {first_error or '(none recorded; see the runs)'}")
    return Notification(
        kind="failure",
        title=f"{where}{len(outcomes)} run(s) failed",
        lines=tuple(lines),
        items=tuple(
            (
                f"{o.what}: {o.error.splitlines()[0] if o.error else 'failed'}",
                links.run(o.run_id).url,
            )
            for o in outcomes
        ),
        links=(Link("failed runs", f"{links.dagster_url}/runs?q%5B0%5D=status%3AFAILURE"),),
    )


def recovered(recoveries: Sequence[tuple[str, list, str]], links: Links) -> Notification:
    """`recoveries`: (target, [failures, since], run id that materialized it)."""
    first_target, _, first_run = recoveries[0]
    items = tuple(
        (
            f"{label(key)}: materialized after {count} failure(s) since {when(since)}",
            links.run(run_id).url,
        )
        for key, (count, since), run_id in recoveries
    )
    title = (
        f"Recovered: {label(first_target)}"
        if len(recoveries) == 1
        else f"Recovered: {len(recoveries)} asset partitions"
    )
    return Notification(
        kind="recovered",
        title=title,
        items=items,
        links=(links.run(first_run), links.asset(first_target)),
    )


def tick_failed(
    kind: str, name: str, error: str, count: int, since: float, links: Links
) -> Notification:
    still = f"still failing: {count} failed ticks since {when(since)}" if count > 1 else None
    return Notification(
        kind="failure",
        title=f"The {kind} {name} is failing" if count > 1 else f"A tick of {kind} {name} failed",
        lines=tuple(
            line
            for line in (
                still,
                f"Error: {error or '(no message)'}",
                f"Nothing it would request runs while its ticks fail; the {kind}'s page shows "
                "every tick.",
            )
            if line
        ),
        links=(links.instigator(kind, name),),
    )


def tick_recovered(kind: str, name: str, count: int, since: float, links: Links) -> Notification:
    return Notification(
        kind="recovered",
        title=f"The {kind} {name} works again",
        lines=(f"Its ticks succeed again after {count} failed tick(s) since {when(since)}.",),
        links=(links.instigator(kind, name),),
    )


def snapshot_stale(
    asset: str,
    published_at: float | None,
    max_age: timedelta,
    now: float,
    failed_tests: Sequence[str],
    failing: Sequence[str],
    links: Links,
) -> Notification:
    allowed = ago(max_age.total_seconds())
    lines = [
        f"Superset keeps serving the snapshot published {when(published_at)} "
        f"({ago(now - published_at)} ago); its freshness policy allows {allowed}."
        if published_at
        else "No snapshot has been published yet.",
    ]
    if failed_tests:
        lines.append("dbt tests failing now, which hold publication: " + ", ".join(failed_tests))
    if failing:
        lines.append("Failing now: " + "; ".join(label(t) for t in failing[:SHOWN_STREAKS]))
    if not failed_tests and not failing:
        lines.append(
            "No failure is known: check that the automation_sensor and dbt_models_job_schedule "
            "are running."
        )
    return Notification(
        kind="stale",
        title=f"Stale: {asset}, the snapshot Superset serves",
        lines=tuple(lines),
        links=(links.asset(asset),),
    )


def snapshot_fresh(asset: str, published_at: float | None, links: Links) -> Notification:
    return Notification(
        kind="recovered",
        title=f"Fresh again: {asset}",
        lines=(f"A new snapshot was published {when(published_at)}." if published_at else "",),
        links=(links.asset(asset),),
    )
