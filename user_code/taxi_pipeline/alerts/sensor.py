"""`alert_sensor`: Dagster's own records turned into notifications, without storms or silence.

What it reads, each tick (every 30 s), all kept by Dagster anyway:
- run status changes (`instance.fetch_run_status_changes`, the records Dagster's
  `run_failure_sensor` reads): a failed run of any job, automation and backfills included, and a
  run that materializes a partition that had failed;
- the ticks of every other sensor and schedule of the code location: a tick that errors (the TLC
  site unobservable for longer than TAXI_ALERT_SOURCE_DOWN_AFTER is one: tlc_site_sensor fails
  its tick then), and the first good tick after;
- the freshness state Dagster's freshness daemon keeps for `published_warehouse`
  (taxi_pipeline/freshness.py sets the policies): stale, then fresh again.

Why one sensor of our own and not `run_failure_sensor`: that decorator calls its function once
per run, at most five per tick, with nothing at the end of a tick, so it can fold neither a burst
nor a backfill into one message, and it cannot remember a partition's earlier failures. This
sensor reads the same records, with its cursor holding what it must remember:

- one notification per failed run; the failures found in one tick are one message; the failed
  runs of a backfill are held until the backfill ends (at most BACKFILL_HOLD) and sent as one;
- a partition that fails again says it is the Nth failure since when; one that materializes
  after failing sends one "recovered" message; a sensor failing tick after tick is told once,
  reminded each REMIND_AFTER, and recovered once;
- delivery happens here, never in a run: a channel down is retried on the next ticks (for up to
  OUTBOX_KEEP) and said in the tick, and never fails, slows or blocks a pipeline run.

Dagster has no public API for ticks, instigator states, freshness states or backfills; the calls
used here are guarded by tests/test_alerts.py::test_the_instance_apis_the_alerts_read_still_exist.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import dagster as dg

from taxi_pipeline.alerts import messages
from taxi_pipeline.alerts.channels import deliver
from taxi_pipeline.alerts.notification import Notification, first_lines
from taxi_pipeline.alerts.runs import RunOutcome, read_outcome, user_error
from taxi_pipeline.settings import Settings

SENSOR_NAME = "alert_sensor"
INTERVAL_SECONDS = 30
SNAPSHOT = dg.AssetKey("published_warehouse")
# Bounds of one tick and of the cursor (which Dagster stores on every tick).
RUN_EVENTS_PER_TICK = 200
TICKS_PER_TICK = 100  # of each sensor or schedule (the busiest ticks every 15 s)
FAILING_MAX = 5000  # partitions remembered as failing
HELD_RUNS_MAX = 500  # failed runs of one backfill held for its message
OUTBOX_MAX = 50  # undelivered notifications kept for retry
# A backfill's failures wait for its end, but never longer than this (no silence).
BACKFILL_HOLD = 2 * 3600
# A sensor or schedule failing tick after tick is reminded of this often.
REMIND_AFTER = 24 * 3600
# An undelivered notification is retried for this long, then dropped (and counted).
OUTBOX_KEEP = 24 * 3600
_FAILURE, _SUCCESS = dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_SUCCESS
# Backfill states that still launch runs (dagster._core.execution.backfill.BulkActionStatus).
_BACKFILL_RUNNING = {"REQUESTED", "CANCELING"}
_UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass
class AlertState:
    """The sensor's cursor: what it has handled, and what it must remember."""

    started: float = 0.0  # the first tick: what happened before is history, not news
    run_events: dict[str, int] = field(default_factory=dict)  # event type -> last storage id
    failing: dict[str, list] = field(default_factory=dict)  # target -> [failures, since]
    held: dict[str, dict] = field(default_factory=dict)  # backfill -> {"runs": [], "since": t}
    ticks: dict[str, dict] = field(default_factory=dict)  # instigator -> its tick streak
    snapshot_freshness: str | None = None
    outbox: list[dict] = field(default_factory=list)
    dropped: int = 0

    @classmethod
    def load(cls, cursor: str | None) -> AlertState:
        return cls(**json.loads(cursor)) if cursor else cls()

    def dump(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def _latest_run_event(instance: dg.DagsterInstance, event_type) -> int:
    records = instance.fetch_run_status_changes(event_type, limit=1).records
    return records[0].storage_id if records else 0


def _run_events(instance: dg.DagsterInstance, state: AlertState):
    """New run failures and successes since the cursor, oldest first."""
    found = []
    for event_type in (_FAILURE, _SUCCESS):
        after = state.run_events[event_type.value]
        records = instance.fetch_run_status_changes(
            dg.RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),
            limit=RUN_EVENTS_PER_TICK,
            ascending=True,
        ).records
        found += [
            (record.storage_id, event_type, record.event_log_entry.run_id) for record in records
        ]
        if records:
            state.run_events[event_type.value] = records[-1].storage_id
    return sorted(found, key=lambda item: item[0])


def _fail(state: AlertState, targets: Sequence[str], now: float) -> None:
    for key in targets:
        count, since = state.failing.get(key, (0, now))
        state.failing[key] = [count + 1, since]
    if len(state.failing) > FAILING_MAX:  # forget the oldest streaks first
        oldest = sorted(state.failing, key=lambda key: state.failing[key][1])
        for key in oldest[: len(state.failing) - FAILING_MAX]:
            del state.failing[key]


def _recover(state: AlertState, materialized: Sequence[str], run_id: str) -> list:
    return [(key, state.failing.pop(key), run_id) for key in materialized if key in state.failing]


def _backfill_done(instance: dg.DagsterInstance, backfill_id: str) -> bool:
    backfill = instance.get_backfill(backfill_id)
    if backfill is not None and backfill.status.value in _BACKFILL_RUNNING:
        return False
    unfinished = dg.RunsFilter(tags={"dagster/backfill": backfill_id}, statuses=_UNFINISHED)
    return instance.get_runs_count(unfinished) == 0


def run_notifications(context, state: AlertState, links: messages.Links, now: float) -> list:
    instance, graph = context.instance, context.repository_def.asset_graph
    failed: list[RunOutcome] = []
    recoveries = []
    for _, event_type, run_id in _run_events(instance, state):
        run = instance.get_run_by_id(run_id)
        if run is None:  # deleted meanwhile
            continue
        outcome = read_outcome(instance, run, graph)
        materialized = outcome.targets if event_type == _SUCCESS else outcome.materialized
        recoveries += _recover(state, materialized, run_id)
        if event_type == _FAILURE:
            _fail(state, outcome.failed_targets or outcome.targets, now)
            if outcome.backfill:
                held = state.held.setdefault(outcome.backfill, {"runs": [], "since": now})
                held["runs"] = (held["runs"] + [run_id])[-HELD_RUNS_MAX:]
            else:
                failed.append(outcome)
    notifications = []
    if failed:
        notifications.append(messages.runs_failed(failed, state.failing, links))
    for backfill_id, held in list(state.held.items()):
        if now - held["since"] < BACKFILL_HOLD and not _backfill_done(instance, backfill_id):
            continue
        del state.held[backfill_id]
        outcomes = [
            read_outcome(instance, run, graph)
            for run in instance.get_runs(dg.RunsFilter(run_ids=held["runs"]))
        ]
        if outcomes:
            notifications.append(
                messages.runs_failed(outcomes, state.failing, links, backfill=backfill_id)
            )
    if recoveries:
        notifications.append(messages.recovered(recoveries, links))
    return notifications


def tick_notifications(context, state: AlertState, links: messages.Links, now: float) -> list:
    """A tick that errors, for every sensor and schedule of the location but this one."""
    repo = context.repository_def
    watched = {s.name: "sensor" for s in repo.sensor_defs if s.name != SENSOR_NAME}
    watched |= {s.name: "schedule" for s in repo.schedule_defs}
    notifications = []
    for instigator in context.instance.all_instigator_state():
        name = instigator.instigator_name
        if name not in watched:
            continue
        kind = watched[name]
        # first sight: every tick since the alerts started
        memory = state.ticks.setdefault(name, {"seen": state.started, "count": 0})
        ticks = context.instance.get_ticks(
            instigator.instigator_origin_id,
            instigator.selector_id,
            after=memory["seen"],
            limit=TICKS_PER_TICK,
        )
        for tick in sorted(ticks, key=lambda tick: tick.timestamp):
            if tick.status.value == "STARTED":  # still evaluating: its outcome comes later
                break
            memory["seen"] = tick.timestamp
            if tick.status.value == "FAILURE":
                memory["count"] += 1
                if memory["count"] == 1:
                    memory["since"] = tick.timestamp
                due = now - memory.get("notified", 0) >= REMIND_AFTER
                if memory["count"] == 1 or due:
                    error = first_lines(user_error(tick.error)) if tick.error else ""
                    notifications.append(
                        messages.tick_failed(
                            kind, name, error, memory["count"], memory["since"], links
                        )
                    )
                    memory["notified"] = now
            elif memory["count"]:
                notifications.append(
                    messages.tick_recovered(kind, name, memory["count"], memory["since"], links)
                )
                memory.update(count=0, since=None, notified=0)
    return notifications


def freshness_notifications(
    context, state: AlertState, settings: Settings, failed_tests, links: messages.Links, now: float
) -> list:
    """The freshness daemon's state of the snapshot: one message when it turns stale, one when
    it is fresh again."""
    instance = context.instance
    record = instance.get_freshness_state_records([SNAPSHOT]).get(SNAPSHOT)
    current = record.freshness_state.value if record else None
    previous, state.snapshot_freshness = state.snapshot_freshness, current
    if current == previous or current not in ("FAIL", "PASS"):
        return []
    latest = instance.get_latest_materialization_event(SNAPSHOT)
    published_at = latest.timestamp if latest else None
    name = SNAPSHOT.to_user_string()
    if current == "FAIL":
        failing = sorted(state.failing, key=lambda key: -state.failing[key][1])
        return [
            messages.snapshot_stale(
                name,
                published_at,
                settings.freshness.snapshot_max_age,
                now,
                failed_tests(instance),
                failing,
                links,
            )
        ]
    if previous == "FAIL":
        return [messages.snapshot_fresh(name, published_at, links)]
    return []


def dispatch(new: list[Notification], state: AlertState, settings: Settings, now: float) -> str:
    """Send what is new and what is still owed; the tick's message says what happened."""
    alerts = settings.alerts
    titles = "; ".join(n.title for n in new)
    if not alerts.channels:
        state.outbox = []
        return (
            f"no alert channel is set (TAXI_ALERT_WEBHOOK_URL, TAXI_ALERT_SMTP_HOST in .env): not "
            f"sent: {titles}"
            if new
            else "nothing to report; no alert channel is set (README: Alerts and freshness)"
        )
    state.outbox += [
        {"notification": n.to_json(), "channels": alerts.channels, "since": now} for n in new
    ]
    down: dict[str, str] = {}
    kept, sent = [], 0
    for entry in state.outbox:
        owed = [channel for channel in entry["channels"] if channel in alerts.channels]
        notification = Notification.from_json(entry["notification"])
        for channel in [c for c in owed if c not in down]:
            error = deliver(notification, alerts, [channel])[channel]
            if error is None:
                owed.remove(channel)
            else:
                down[channel] = error  # not tried again in this tick: one timeout per channel
        if not owed:
            sent += 1
        elif now - entry["since"] < OUTBOX_KEEP:
            kept.append({**entry, "channels": owed})
        else:
            state.dropped += 1
    state.dropped += max(0, len(kept) - OUTBOX_MAX)
    state.outbox = kept[-OUTBOX_MAX:]
    parts = []
    if sent:
        parts.append(f"sent {sent} notification(s) ({', '.join(alerts.channels)})")
    if titles:
        parts.append(f"new: {titles}")
    parts += [f"{channel} NOT delivered: {error}" for channel, error in down.items()]
    if state.outbox:
        parts.append(
            f"{len(state.outbox)} notification(s) kept, retried on the next ticks for up to "
            f"{OUTBOX_KEEP // 3600} h"
        )
    if state.dropped:
        parts.append(
            f"{state.dropped} notification(s) dropped undelivered since the sensor started"
        )
    return "; ".join(parts) or "nothing to report"


def build_alert_sensor(settings: Settings, failed_tests) -> dg.SensorDefinition:
    """`failed_tests(instance)`: the blocking dbt tests failing now (assets/publish.py), which a
    stale-snapshot message names. The channels come from `settings` and never appear on the
    Resources page: a webhook URL and an SMTP password are secrets."""
    links = messages.Links(settings.dagster_url)

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends a notification (webhook, email: TAXI_ALERT_* settings) for a failed "
        "run, a partition that recovers, a sensor or schedule tick that errors, and the "
        "published snapshot going stale; one message per burst. Requests no run.",
    )
    def alert_sensor(context: dg.SensorEvaluationContext):
        state = AlertState.load(context.cursor)
        now = time.time()
        if not state.started:  # first tick: what happened before is history, not news
            state.started = now
            state.run_events = {
                kind.value: _latest_run_event(context.instance, kind)
                for kind in (_FAILURE, _SUCCESS)
            }
        new = [
            *run_notifications(context, state, links, now),
            *tick_notifications(context, state, links, now),
            *freshness_notifications(context, state, settings, failed_tests, links, now),
        ]
        summary = dispatch(new, state, settings, now)
        if new or state.outbox:
            context.log.warning(summary) if "NOT delivered" in summary else context.log.info(
                summary
            )
        context.update_cursor(state.dump())
        return dg.SkipReason(summary)

    return alert_sensor
