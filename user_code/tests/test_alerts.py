"""Alerts, against real receivers the tests start on 127.0.0.1 (an HTTP webhook, an SMTP server).

Runs are executed in-process on a test instance and `alert_sensor`'s ticks are played one by one,
as the daemon plays them; each test asserts what each receiver got, word for word where it matters.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from alert_receivers import WEBHOOK_PATH, SmtpReceiver, WebhookReceiver
from conftest import TEST_ENV
from dagster._core.definitions.freshness import FreshnessState
from dagster._core.loader import LoadingContextForTest
from dagster._core.remote_origin import (
    GrpcServerCodeLocationOrigin,
    RemoteInstigatorOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.scheduler.instigation import (
    InstigatorState,
    InstigatorStatus,
    InstigatorType,
    TickData,
    TickStatus,
)
from dagster._core.test_utils import freeze_time
from dagster._daemon.freshness import FreshnessDaemon
from dagster._utils.error import serializable_error_info_from_exc_info
from tlc_server import unreachable_base_url

from taxi_pipeline.alerts.sensor import SENSOR_NAME
from taxi_pipeline.definitions import build_defs
from taxi_pipeline.settings import load_settings

DAGSTER_URL = "http://dagster.example:3000"
SNAPSHOT = dg.AssetKey("published_warehouse")


@pytest.fixture(scope="module")
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpReceiver]:
    receiver = SmtpReceiver()
    yield receiver
    receiver.close()


def subject(mail) -> str:
    # a long subject is folded onto a second line by the sender; a mail client unfolds it
    return " ".join(mail["Subject"].split())


def alert_env(tmp: Path, webhook: WebhookReceiver, smtp: SmtpReceiver, **more) -> dict:
    return {
        **TEST_ENV,
        "TAXI_DATA_DIR": str(tmp),
        "TAXI_DAGSTER_URL": DAGSTER_URL,
        "TAXI_ALERT_WEBHOOK_URL": webhook.url,
        "TAXI_ALERT_SMTP_HOST": "127.0.0.1",
        "TAXI_ALERT_SMTP_PORT": str(smtp.port),
        "TAXI_ALERT_SMTP_STARTTLS": "false",
        "TAXI_ALERT_EMAIL_FROM": "taxi-platform@example.com",
        "TAXI_ALERT_EMAIL_TO": "oncall@example.com, data-team@example.com",
        **more,
    }


@dataclass
class Stack:
    """One code location on one instance, with the alert sensor's ticks played by hand."""

    defs: dg.Definitions
    instance: dg.DagsterInstance
    webhook: WebhookReceiver
    smtp: SmtpReceiver
    cursor: str | None = None

    def tick(self) -> str:
        """One tick of alert_sensor, as the daemon runs it: its message (it never raises)."""
        sensor = self.defs.resolve_sensor_def(SENSOR_NAME)
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, definitions=self.defs
        )
        data = sensor.evaluate_tick(context)
        assert not data.run_requests
        self.cursor = data.cursor
        return data.skip_message

    def new(self) -> tuple[list[str], list]:
        """What each receiver got since the last call."""
        texts, mails = self.webhook.texts(), list(self.smtp.messages)
        self.webhook.received.clear()
        self.smtp.messages.clear()
        return texts, mails

    def run(
        self, *names: str, partition: str | None = None, tags=None
    ) -> dg.ExecuteInProcessResult:
        """A run of `names` as the UI or the automation launches one (the asset job, with its
        asset selection recorded on the run)."""
        return self.defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=[dg.AssetKey(name) for name in names],
            partition_key=partition,
            instance=self.instance,
            tags=tags,
            raise_on_error=False,
        )


@pytest.fixture
def stack(tmp_path, webhook, smtp) -> Iterator[Stack]:
    defs = build_defs(load_settings(alert_env(tmp_path, webhook, smtp)))
    with dg.instance_for_test() as instance:
        stack = Stack(defs, instance, webhook, smtp)
        assert "nothing to report" in stack.tick()  # the first tick starts from now
        stack.new()
        yield stack


def test_a_failed_run_notifies_once_in_each_channel_with_what_why_and_links(stack: Stack):
    # the month's file was never downloaded: the load fails, naming the fix
    result = stack.run("taxi_trips", partition="2023-01-01")
    assert not result.success
    message = stack.tick()
    assert message.startswith("sent 1 notification(s) (webhook, email)")
    [text], [mail] = stack.new()
    run_id = result.run_id
    assert text.startswith(":red_circle: *Run failed: taxi_trips (2023-01-01)*")
    assert "Launched by hand (the UI or the API)." in text
    assert "first failure of taxi_trips 2023-01-01" in text
    assert "Error: Failure: " in text and "does not exist: materialize `taxi_trips_file`" in text
    assert f"<{DAGSTER_URL}/runs/{run_id}|run {run_id[:8]}>" in text
    assert f"<{DAGSTER_URL}/assets/taxi_trips?view=partitions&partition=2023-01-01|" in text
    assert subject(mail) == "[taxi platform] Run failed: taxi_trips (2023-01-01)"
    assert mail["From"] == "taxi-platform@example.com"
    assert mail["X-Envelope-To"] == "oncall@example.com, data-team@example.com"
    body = mail.get_content()
    assert "first failure of taxi_trips 2023-01-01" in body
    assert f"run {run_id[:8]}: {DAGSTER_URL}/runs/{run_id}" in body
    # nothing new: nothing sent
    assert stack.tick() == "nothing to report"
    assert stack.new() == ([], [])


def test_a_repeated_failure_counts_and_a_recovery_is_told_once(stack: Stack):
    first = time.time()
    # as the automation's daily retry of a broken month launches it (its run tags)
    automation = {
        "dagster/from_automation_condition": "true",
        "dagster/sensor_name": "automation_sensor",
    }
    for _ in range(2):
        assert not stack.run("taxi_trips", partition="2023-01-01", tags=automation).success
        stack.tick()
    texts, mails = stack.new()
    assert len(texts) == len(mails) == 2
    assert "Launched by the automation (automation_sensor)." in texts[0]
    assert "first failure of taxi_trips 2023-01-01" in texts[0]
    since = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(first))
    assert f"2nd failure of taxi_trips 2023-01-01 since {since[:-6]}" in texts[1]
    # fixed: the file is downloaded (generated) and the month loads
    assert stack.run("taxi_trips_file", "taxi_trips", partition="2023-01-01").success
    assert stack.tick().startswith("sent 1 notification(s)")
    [text], [mail] = stack.new()
    assert text.startswith(":large_green_circle: *Recovered: taxi_trips 2023-01-01*")
    assert "taxi_trips 2023-01-01: materialized after 2 failure(s) since" in text
    assert subject(mail) == "[taxi platform] Recovered: taxi_trips 2023-01-01"
    # a month that never failed recovers nothing
    assert stack.run("taxi_trips_file", "taxi_trips", partition="2023-02-01").success
    assert stack.tick() == "nothing to report"


def test_a_backfill_whose_runs_fail_is_one_message_listing_them(stack: Stack):
    backfill = {"dagster/backfill": "bf-burst"}
    for month in ("2023-01-01", "2023-02-01", "2023-03-01"):
        assert not stack.run("taxi_trips", partition=month, tags=backfill).success
    # 30 days in one run (a single-run backfill): dbt fails, nothing is loaded
    days = {
        "dagster/asset_partition_range_start": "2023-01-01",
        "dagster/asset_partition_range_end": "2023-01-30",
    }
    assert not stack.run("daily_metrics", tags={**backfill, **days}).success
    assert stack.tick().startswith("sent 1 notification(s)")
    [text], [mail] = stack.new()
    assert text.startswith(":red_circle: *Backfill bf-burst: 4 run(s) failed*")
    assert "33 asset partitions did not materialize." in text
    for month in ("2023-01-01", "2023-02-01", "2023-03-01"):
        assert f"taxi_trips ({month}): Failure: " in text
    assert "daily_metrics (2023-01-01...2023-01-30): " in text
    assert "first failure of daily_metrics 2023-01-01" in text  # streaks of the first five
    assert "and 28 more partitions" in text
    assert subject(mail) == "[taxi platform] Backfill bf-burst: 4 run(s) failed"
    assert stack.tick() == "nothing to report"


def test_a_failing_blocking_dbt_test_names_the_test_and_the_held_snapshot(stack: Stack):
    assert stack.run("taxi_zones_file", "taxi_zones").success
    warehouse = stack.defs.resources["warehouse"].database
    with duckdb.connect(warehouse) as conn:
        conn.execute("update raw_taxis.zones set borough = 'Atlantis' where zone_id = 1")
    result = stack.run("stg_zones")
    assert not result.success
    assert stack.tick().startswith("sent 1 notification(s)")
    [text], _ = stack.new()
    assert "*Run failed: stg_zones*" in text
    assert (
        "Failed dbt tests (error severity, so blocking): stg_zones:accepted_values_stg_zones_"
        in text
    )
    assert "The snapshot is not published while they fail: Superset keeps serving" in text


def _report_published(instance: dg.DagsterInstance, at: float) -> None:
    with freeze_time(at):
        instance.report_runless_asset_event(dg.AssetMaterialization(SNAPSHOT))


def _evaluate_freshness(stack: Stack) -> FreshnessState:
    """One iteration of Dagster's freshness daemon for the snapshot, at the real time."""
    node = stack.defs.resolve_asset_graph().get(SNAPSHOT)
    context = LoadingContextForTest(stack.instance)
    asyncio.run(FreshnessDaemon()._evaluate_asset(context=context, node=node))
    return stack.instance.get_freshness_state_records([SNAPSHOT])[SNAPSHOT].freshness_state


def test_a_stale_snapshot_alerts_once_and_fresh_again_once(stack: Stack):
    now = time.time()
    _report_published(stack.instance, now - 3600)
    assert _evaluate_freshness(stack) == FreshnessState.PASS
    assert stack.tick() == "nothing to report"
    # the default policy allows 26 h: published 27 h ago is stale
    _report_published(stack.instance, now - 27 * 3600)
    assert _evaluate_freshness(stack) == FreshnessState.FAIL
    assert stack.tick().startswith("sent 1 notification(s)")
    [text], [mail] = stack.new()
    assert text.startswith(":warning: *Stale: published_warehouse, the snapshot Superset serves*")
    assert "ago); its freshness policy allows 26 h." in text and "(27 h ago)" in text
    assert (
        subject(mail) == "[taxi platform] Stale: published_warehouse, the snapshot Superset serves"
    )
    assert f"<{DAGSTER_URL}/assets/published_warehouse|asset published_warehouse>" in text
    # still stale: told once
    assert _evaluate_freshness(stack) == FreshnessState.FAIL
    assert stack.tick() == "nothing to report"
    _report_published(stack.instance, time.time())
    assert _evaluate_freshness(stack) == FreshnessState.PASS
    stack.tick()
    [text], _ = stack.new()
    assert text.startswith(":large_green_circle: *Fresh again: published_warehouse*")


def _record_tick(stack: Stack, name: str, error=None) -> None:
    """What the sensor daemon records for a tick of `name`: its state once, then the tick, with
    the error the evaluation raised (origin as the stack's gRPC code server gives it)."""
    origin = RemoteInstigatorOrigin(
        RemoteRepositoryOrigin(
            GrpcServerCodeLocationOrigin(
                host="user_code", port=4000, location_name="taxi_pipeline"
            ),
            "__repository__",
        ),
        name,
    )
    state = InstigatorState(origin, InstigatorType.SENSOR, InstigatorStatus.DECLARED_IN_CODE)
    if stack.instance.get_instigator_state(state.instigator_origin_id, state.selector_id) is None:
        stack.instance.add_instigator_state(state)
    stack.instance.create_tick(
        TickData(
            instigator_origin_id=state.instigator_origin_id,
            instigator_name=name,
            instigator_type=InstigatorType.SENSOR,
            status=TickStatus.FAILURE if error else TickStatus.SKIPPED,
            timestamp=time.time(),
            selector_id=state.selector_id,
            error=error,
            skip_reason=None if error else "quiet",
        )
    )


def _tlc_site_tick(stack: Stack, cursor: str):
    """Evaluate the real tlc_site_sensor against a site that does not answer."""
    sensor = stack.defs.resolve_sensor_def("tlc_site_sensor")
    context = dg.build_sensor_context(
        instance=stack.instance,
        cursor=cursor,
        resources=stack.defs.resources,
        definitions=stack.defs,
    )
    try:
        return sensor(context)
    except Exception:
        return serializable_error_info_from_exc_info(sys.exc_info())


def test_the_tlc_site_unobservable_for_too_long_fails_its_tick_and_alerts_once(
    tmp_path, webhook, smtp
):
    env = alert_env(
        tmp_path,
        webhook,
        smtp,
        TAXI_DATA_SOURCE="nyc-tlc",
        TAXI_TLC_BASE_URL=unreachable_base_url(),
        TAXI_ALERT_SOURCE_DOWN_AFTER="2h",
    )
    defs = build_defs(load_settings(env))
    with dg.instance_for_test() as instance:
        stack = Stack(defs, instance, webhook, smtp)
        stack.tick()
        # first look: skipped, and the cursor remembers since when
        first = _tlc_site_tick(stack, None)
        assert "could not observe" in first.skip_reason.skip_message
        assert "unobservable_since" in first.cursor
        # still down after 3 h: the tick fails, naming how long and the setting
        since = time.time() - 3 * 3600
        error = _tlc_site_tick(stack, f'{{"unobservable_since": {since}}}')
        assert "SourceUnobservable" in error.to_string()
        assert "has not been observable for 3h00m" in error.to_string()
        assert "longer than TAXI_ALERT_SOURCE_DOWN_AFTER (2:00:00)" in error.to_string()
        _record_tick(stack, "tlc_site_sensor", error)
        assert stack.tick().startswith("sent 1 notification(s)")
        [text], [mail] = stack.new()
        assert text.startswith(":red_circle: *A tick of sensor tlc_site_sensor failed*")
        assert "SourceUnobservable: The TLC's site has not been observable for 3h00m" in text
        assert f"<{DAGSTER_URL}/locations/taxi_pipeline/sensors/tlc_site_sensor|" in text
        assert subject(mail) == "[taxi platform] A tick of sensor tlc_site_sensor failed"
        # failing again: no new message (a reminder only after a day)
        _record_tick(stack, "tlc_site_sensor", error)
        assert stack.tick() == "nothing to report"
        # the site answers again: one message
        _record_tick(stack, "tlc_site_sensor")
        stack.tick()
        [text], _ = stack.new()
        assert text.startswith(":large_green_circle: *The sensor tlc_site_sensor works again*")
        assert "after 2 failed tick(s) since" in text


def test_a_receiver_down_or_failing_never_touches_runs_and_the_tick_says_why(stack: Stack):
    stack.webhook.status = 500
    try:
        assert not stack.run("taxi_trips", partition="2023-03-01").success
        message = stack.tick()
        assert "sent 1 notification(s)" not in message
        assert "webhook NOT delivered: the webhook answered HTTP 500" in message
        assert "Fix: check TAXI_ALERT_WEBHOOK_URL" in message
        assert "1 notification(s) kept, retried on the next ticks" in message
        assert WEBHOOK_PATH not in message  # the URL's token is never shown
        # email went out; the webhook is owed
        texts, mails = stack.new()
        assert texts == [] and len(mails) == 1
        # a pipeline run meanwhile is untouched by the channel
        assert stack.run("taxi_zones_file", "taxi_zones").success
    finally:
        stack.webhook.status = 200
    # the receiver is back: the owed message is delivered once, and only to the webhook
    assert stack.tick().startswith("sent 1 notification(s)")
    texts, mails = stack.new()
    assert len(texts) == 1 and "Run failed: taxi_trips (2023-03-01)" in texts[0]
    assert mails == []


def test_a_receiver_that_is_not_there_is_named_with_the_fix(tmp_path, webhook, smtp):
    env = alert_env(
        tmp_path,
        webhook,
        smtp,
        TAXI_ALERT_WEBHOOK_URL=unreachable_base_url() + WEBHOOK_PATH,
        TAXI_ALERT_SMTP_PORT=unreachable_base_url().rsplit(":", 1)[1],
    )
    defs = build_defs(load_settings(env))
    with dg.instance_for_test() as instance:
        stack = Stack(defs, instance, webhook, smtp)
        stack.tick()
        assert not stack.run("taxi_trips", partition="2023-01-01").success
        message = stack.tick()
        assert "webhook NOT delivered: could not connect to the webhook" in message
        assert "email NOT delivered: could not send mail through 127.0.0.1:" in message
        assert "Fix: check TAXI_ALERT_SMTP_HOST and TAXI_ALERT_SMTP_PORT" in message
        assert WEBHOOK_PATH not in message


def test_without_a_channel_nothing_is_sent_and_the_tick_says_what_would_have_been(tmp_path):
    defs = build_defs(load_settings({**TEST_ENV, "TAXI_DATA_DIR": str(tmp_path)}))
    with dg.instance_for_test() as instance:
        sensor = defs.resolve_sensor_def(SENSOR_NAME)
        first = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, definitions=defs))
        assert "no alert channel is set" in first.skip_message
        defs.resolve_implicit_global_asset_job_def().execute_in_process(
            asset_selection=[dg.AssetKey("taxi_trips")],
            partition_key="2023-01-01",
            instance=instance,
            raise_on_error=False,
        )
        data = sensor.evaluate_tick(
            dg.build_sensor_context(instance=instance, cursor=first.cursor, definitions=defs)
        )
        assert data.skip_message.startswith(
            "no alert channel is set (TAXI_ALERT_WEBHOOK_URL, TAXI_ALERT_SMTP_HOST in .env): not "
            "sent: Run failed: taxi_trips (2023-01-01)"
        )


def test_the_instance_apis_the_alerts_read_still_exist():
    """Dagster has no public API for these; alerts/ uses them (each module says where). An
    upgrade that renames one fails here, not in a deployment's silent alert sensor."""
    with dg.instance_for_test() as instance:
        assert instance.all_logs("no-such-run", of_type={dg.DagsterEventType.STEP_FAILURE}) == []
        assert instance.all_instigator_state() == []
        assert instance.get_backfill("no-such-backfill") is None
        assert instance.get_freshness_state_records([SNAPSHOT]) == {}
        assert (
            instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(SNAPSHOT, "none"))
            is None
        )
    assert {s.value for s in TickStatus} >= {"STARTED", "SKIPPED", "SUCCESS", "FAILURE"}


def test_what_a_message_quotes_is_bounded():
    from taxi_pipeline.alerts.notification import Notification, first_lines

    error = "\n".join(f"line {i} " + "x" * 300 for i in range(100))
    assert first_lines(error).count("\n") <= 3 and len(first_lines(error)) == 600
    burst = Notification(
        kind="failure",
        title="Run failed: " + ", ".join(f"asset_{i}" for i in range(100)),
        items=tuple((f"run {i}", None) for i in range(40)),
    )
    assert len(burst.title) == 150 and burst.title.endswith("…")
    text = burst.webhook_payload()["text"]
    assert "• run 14" in text and "• run 15" not in text and "… and 25 more" in text
    assert "... and 25 more" in burst.email("a@example.com", ("b@example.com",)).get_content()
