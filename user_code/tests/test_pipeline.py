"""Every asset and asset check materialized in-process on two months of `sample` data.

One module-scoped build (zones, January and February, the dbt models, the daily window, the
Python assets, the snapshot) on one Dagster instance, then assertions on real numbers.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from conftest import DBT_TARGET_PATH
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from taxi_pipeline.assets.publish import served_snapshot_run, write_snapshot

MONTHS = ["2023-01-01", "2023-02-01"]


def _ok(result: dg.ExecuteInProcessResult) -> dg.ExecuteInProcessResult:
    assert result.success
    for evaluation in result.get_asset_check_evaluations():
        assert evaluation.passed, f"dbt test failed: {evaluation.asset_check_key.to_user_string()}"
    return result


def _range_tags(first: str, last: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


class Built:
    """What the module's build produced, for the assertions."""

    def __init__(self, settings, defs: dg.Definitions, instance):
        self.settings = settings
        self.defs = defs
        self.resources = defs.resources
        self.instance = instance
        self.results: dict[str, dg.ExecuteInProcessResult] = {}

    def materialize(self, name: str, assets, **kwargs) -> dg.ExecuteInProcessResult:
        result = _ok(
            dg.materialize(assets, resources=self.resources, instance=self.instance, **kwargs)
        )
        self.results[name] = result
        return result

    def asset(self, key: str) -> dg.AssetsDefinition:
        """The definition that materializes `key` (for a dbt model: all models of its kind)."""
        return self.defs.get_assets_def(key)

    def query(self, sql: str, params=None):
        with duckdb.connect(str(self.settings.duckdb_database), read_only=True) as conn:
            return conn.execute(sql, params or []).fetchall()


@pytest.fixture(scope="module")
def built(settings, defs) -> Built:
    with dg.instance_for_test() as instance:
        state = Built(settings, defs, instance)
        state.materialize("zones", [state.asset("taxi_zones_file"), state.asset("taxi_zones")])
        for month in MONTHS:
            state.materialize(
                f"trips {month}",
                [state.asset("taxi_trips_file"), state.asset("taxi_trips")],
                partition_key=month,
            )
        state.materialize("dbt", [state.asset("location_metrics")])
        state.materialize(
            "daily", [state.asset("daily_metrics")], tags=_range_tags("2023-01-01", "2023-02-28")
        )
        state.materialize("airport", [state.asset("airport_trips")])
        state.materialize(
            "weekly", [state.asset("trips_by_week")], tags=_range_tags("2023-01-01", "2023-02-19")
        )
        state.materialize("publish", [state.asset("published_warehouse")])
        yield state


def _metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    [event] = [
        e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)
    ]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def test_each_month_loads_its_file_minus_the_counted_drops(built: Built):
    for month in MONTHS:
        metadata = _metadata(built.results[f"trips {month}"], "taxi_trips")
        file_rows = _metadata(built.results[f"trips {month}"], "taxi_trips_file")["rows_in_file"]
        assert file_rows == built.settings.sample_trips_per_month
        dropped = sum(
            v for k, v in metadata.items() if k.startswith("dropped_") and k != "dropped_total"
        )
        assert metadata["dagster/row_count"] == file_rows - dropped
        # the sample carries a few of every real quirk, so the cleaning code really ran
        assert dropped > 0
        [(rows,)] = built.query(
            "select count(*) from raw_taxis.trips where partition_date = ?", [month]
        )
        assert rows == metadata["dagster/row_count"]
    [(outside,)] = built.query(
        "select count(*) from raw_taxis.trips "
        "where strftime(pickup_datetime, '%Y-%m-01') <> partition_date"
    )
    assert outside == 0


def test_location_metrics_account_for_every_trip(built: Built):
    [(staged,)] = built.query("select count(*) from stg_trips")
    [(raw,)] = built.query("select count(*) from raw_taxis.trips")
    [(located,)] = built.query("select sum(trips) from location_metrics")
    assert staged == raw == located > 0
    airports = built.query(
        "select distinct pickup_zone from location_metrics where from_airport order by 1"
    )
    assert len(airports) == 3


def test_daily_metrics_match_an_independent_query(built: Built):
    expected = built.query(
        """
        select cast(pickup_datetime as date), count(*),
               round(avg(epoch(dropoff_datetime) - epoch(pickup_datetime)) / 60, 6),
               round(avg(fare_amount), 6),
               count(*) filter (where epoch(dropoff_datetime) - epoch(pickup_datetime) > 1800)
        from stg_trips group by 1 order by 1
        """
    )
    actual = built.query(
        """
        select date_of_business, trip_count, round(avg_trip_duration_minutes, 6),
               round(avg_fare_per_trip, 6), trips_over_30_min
        from daily_metrics order by 1
        """
    )
    assert actual == expected
    assert len(actual) == 31 + 28


def test_daily_metrics_rebuild_of_one_day_is_idempotent(built: Built):
    before = built.query("select * from daily_metrics order by date_of_business")
    built.materialize("one day", [built.asset("daily_metrics")], partition_key="2023-01-15")
    assert built.query("select * from daily_metrics order by date_of_business") == before


def _dbt_log(result: dg.ExecuteInProcessResult) -> str:
    """The debug log dbt wrote for the one dbt invocation of a run (in its own target folder)."""
    [log] = DBT_TARGET_PATH.glob(f"*-{result.run_id[:7]}-*/dbt.log")
    return log.read_text()


def test_dbt_steps_reuse_the_parse_state_across_partitions(built: Built):
    # Two days in a row, each its own dbt invocation with its own window, after the module's
    # other dbt steps: neither may re-parse the project. Before, the window went in `--vars`
    # and dagster-dbt never handed the parse state on, so every step logged "Unable to do
    # partial parsing because config vars ... have changed" and parsed from scratch (~4 s).
    logs = [
        _dbt_log(built.materialize(f"day {day}", [built.asset("daily_metrics")], partition_key=day))
        for day in ("2023-02-10", "2023-02-11")
    ]
    for log in logs:
        parsing = [line for line in log.splitlines() if "partial pars" in line.lower()]
        assert not any("Unable to do partial parsing" in line for line in parsing), parsing
        assert any("Nothing changed, skipping partial parsing." in line for line in parsing), (
            parsing
        )
    assert "--event-time-start 2023-02-10T00:00:00" in logs[0]
    assert "--event-time-start 2023-02-11T00:00:00" in logs[1]


def test_loading_a_month_three_times_leaves_the_same_rows(built: Built):
    fingerprint = (
        "select count(*), sum(hash(trip_id, pickup_datetime, total_amount)) "
        "from raw_taxis.trips where partition_date = '2023-01-01'"
    )
    before = built.query(fingerprint)
    for _ in range(3):
        built.materialize("reload", [built.asset("taxi_trips")], partition_key="2023-01-01")
    assert built.query(fingerprint) == before
    [(february,)] = built.query(
        "select count(*) from raw_taxis.trips where partition_date = '2023-02-01'"
    )
    assert (
        february == _metadata(built.results["trips 2023-02-01"], "taxi_trips")["dagster/row_count"]
    )


def test_dbt_materializations_carry_row_counts_and_columns(built: Built):
    metadata = _metadata(built.results["dbt"], "location_metrics")
    [(rows,)] = built.query("select count(*) from location_metrics")
    assert metadata["dagster/row_count"] == rows
    columns = {column.name for column in metadata["dagster/column_schema"].columns}
    assert {"pickup_zone", "destination_borough", "trips"} <= columns
    checks = built.results["dbt"].get_asset_check_evaluations()
    assert len(checks) >= 10


def test_airport_chart_is_written_and_previewed(built: Built):
    metadata = _metadata(built.results["airport"], "airport_trips")
    path = Path(metadata["path"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000
    assert metadata["preview"].startswith("![airport_trips](data:image/png;base64,")
    [(from_airports,)] = built.query("select sum(trips) from location_metrics where from_airport")
    assert metadata["airport_trips"] == from_airports


def test_trips_by_week_has_one_row_per_week(built: Built):
    path = Path(built.settings.outputs_dir) / "trips_by_week.csv"
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    assert [row["period"] for row in rows][:2] == ["2023-01-01", "2023-01-08"]
    assert len(rows) == 8
    [(first_week,)] = built.query(
        "select count(*) from stg_trips where pickup_datetime >= '2023-01-01' "
        "and pickup_datetime < '2023-01-08'"
    )
    assert int(rows[0]["num_trips"]) == first_week
    # re-materializing one week replaces its row instead of appending one
    built.materialize("week again", [built.asset("trips_by_week")], partition_key="2023-01-08")
    with path.open(newline="") as file:
        assert len(list(csv.DictReader(file))) == 8


def test_snapshot_holds_the_marts(built: Built):
    snapshot = built.settings.published_database
    with duckdb.connect(str(snapshot), read_only=True) as conn:
        tables = {row[0] for row in conn.execute("show tables").fetchall()}
        assert {"location_metrics", "daily_metrics", "snapshot_info"} <= tables
        [(published,)] = conn.execute("select count(*) from daily_metrics").fetchall()
    assert published == built.query("select count(*) from daily_metrics")[0][0]
    assert not list(snapshot.parent.glob("*.tmp"))


def test_a_failed_dbt_test_blocks_publishing(built: Built):
    snapshot = built.settings.published_database
    before = snapshot.read_bytes()
    check_key = sorted(
        built.asset("location_metrics").check_keys, key=lambda k: k.to_user_string()
    )[0]
    built.instance.report_runless_asset_event(
        dg.AssetCheckEvaluation(
            asset_key=check_key.asset_key, check_name=check_key.name, passed=False
        )
    )
    result = dg.materialize(
        [built.asset("published_warehouse")],
        resources=built.resources,
        instance=built.instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error.message
    assert check_key.to_user_string() in failure and "Not publishing" in failure
    assert snapshot.read_bytes() == before
    # a passing build afterwards publishes again
    built.materialize("dbt again", [built.asset("location_metrics")])
    built.materialize("publish again", [built.asset("published_warehouse")])


def test_adhoc_request_draws_the_requested_borough(built: Built):
    result = built.materialize(
        "adhoc",
        [built.asset("adhoc_request")],
        run_config=dg.RunConfig(
            ops={
                "adhoc_request": {
                    "config": {
                        "filename": "manhattan-january.json",
                        "borough": "Manhattan",
                        "start_date": "2023-01-01",
                        "end_date": "2023-01-31",
                    }
                }
            }
        ),
    )
    metadata = _metadata(result, "adhoc_request")
    [(expected,)] = built.query(
        "select count(*) from stg_trips t join stg_zones z on t.pickup_zone_id = z.zone_id "
        "where z.borough = 'Manhattan' and t.pickup_datetime < '2023-02-01'"
    )
    assert metadata["trips"] == expected > 0
    assert Path(metadata["path"]).name == "manhattan-january.png"


def test_adhoc_request_for_an_unknown_borough_fails_clearly(built: Built):
    result = dg.materialize(
        [built.asset("adhoc_request")],
        resources=built.resources,
        instance=built.instance,
        raise_on_error=False,
        run_config={
            "ops": {
                "adhoc_request": {
                    "config": {
                        "filename": "atlantis.json",
                        "borough": "Atlantis",
                        "start_date": "2023-01-01",
                        "end_date": "2023-01-02",
                    }
                }
            }
        },
    )
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "atlantis.json" in message and "Manhattan" in message


def test_a_run_of_one_model_reports_only_the_checks_it_selected(built: Built):
    """dbt's tests on raw_taxis.trips are checks of taxi_trips: a run of stg_trips alone (as
    automation requests it) leaves them out instead of reporting results nobody selected."""
    result = built.materialize("stg_trips alone", list(built.defs.assets), selection="stg_trips")
    warnings = [
        event.user_message
        for event in built.instance.all_logs(result.run_id)
        if "not selected" in event.user_message
    ]
    assert warnings == []
    checked = {e.asset_check_key.asset_key for e in result.get_asset_check_evaluations()}
    assert checked == {dg.AssetKey("stg_trips")}


def test_a_test_planned_but_not_run_does_not_block_publishing(built: Built):
    """dbt's `buildable` selection skips a relationships test of stg_trips when stg_zones is not
    built with it: the check stays planned, with no result. That is neither a pass nor a
    failure; publishing goes on and lists it."""
    built.materialize("stg_trips alone again", list(built.defs.assets), selection="stg_trips")
    planned = [
        key.to_user_string()
        for key in built.asset("stg_trips").check_keys
        if key.asset_key == dg.AssetKey("stg_trips")
        and not isinstance(
            built.instance.get_latest_asset_check_evaluation_record(key).evaluation,
            dg.AssetCheckEvaluation,
        )
    ]
    assert planned, "expected a relationships test left planned by the stg_trips-only run"
    result = built.materialize("publish after a planned test", [built.asset("published_warehouse")])
    metadata = _metadata(result, "published_warehouse")
    assert set(planned) <= set(metadata["dbt_tests_never_run"])


def test_a_swap_its_run_never_recorded_is_recorded_by_the_next_publish(built: Built):
    """A publish killed between its swap and its record leaves a served snapshot that no
    materialization describes: the next publish records it (an observation), then replaces it."""
    target = built.settings.published_database
    staging = target.with_name("killed.tmp")
    with duckdb.connect(str(built.settings.duckdb_database)) as conn:
        write_snapshot(conn, staging, "run-killed-after-its-swap")
    os.replace(staging, target)
    assert served_snapshot_run(target)[0] == "run-killed-after-its-swap"

    result = built.materialize("publish after a lost record", [built.asset("published_warehouse")])
    [observation] = [
        event.event_specific_data.asset_observation
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observation.metadata["served_snapshot_run_id"].value == "run-killed-after-its-swap"
    assert served_snapshot_run(target)[0] == result.run_id
    # recorded and served agree again: a further publish observes nothing
    again = built.materialize("publish once more", [built.asset("published_warehouse")])
    assert not [e for e in again.all_events if e.event_type_value == "ASSET_OBSERVATION"]
