"""The code location loads, holds every expected definition, and its schedules and sensors
request the right runs."""

import json
import os
import subprocess
import sys
import time
from datetime import datetime

import dagster as dg
import pytest

from taxi_pipeline.resources import Folders
from taxi_pipeline.sensors import adhoc_request_sensor

EXPECTED_ASSETS = {
    "taxi_trips_file",
    "taxi_trips",
    "taxi_zones_file",
    "taxi_zones",
    "stg_trips",
    "stg_zones",
    "location_metrics",
    "daily_metrics",
    "airport_trips",
    "trips_by_week",
    "adhoc_request",
    "published_warehouse",
    "tlc/yellow_tripdata",
    "tlc/taxi_zone_lookup",
}


@pytest.fixture(scope="module")
def repo(defs):
    dg.Definitions.validate_loadable(defs)
    return defs.get_repository_def()


def test_every_expected_asset_is_defined(repo):
    keys = {key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS


def test_dbt_sources_are_the_loader_assets(repo):
    graph = repo.asset_graph
    assert graph.get(dg.AssetKey("stg_trips")).parent_keys == {dg.AssetKey("taxi_trips")}
    assert graph.get(dg.AssetKey("stg_zones")).parent_keys == {dg.AssetKey("taxi_zones")}


def test_dbt_metadata_reaches_the_ui(repo):
    node = repo.asset_graph.get(dg.AssetKey("location_metrics"))
    assert node.group_name == "analytics"
    assert node.owners
    assert node.description
    references = node.metadata["dagster/code_references"].code_references
    assert references[0].file_path.endswith("location_metrics.sql")
    assert repo.asset_graph.get(dg.AssetKey("stg_trips")).group_name == "staging"


def test_dbt_tests_are_asset_checks(repo):
    checks = repo.asset_graph.asset_check_keys
    by_asset = {key.asset_key.to_user_string() for key in checks}
    assert {"stg_trips", "stg_zones", "location_metrics", "daily_metrics", "taxi_trips"} <= by_asset


def test_no_asset_is_orphaned(repo):
    """Every asset is kept fresh by an automation condition, except the on-demand chart and the
    TLC's files, which are observed (by tlc_site_sensor), not materialized."""
    for key in repo.asset_graph.get_all_asset_keys():
        node = repo.asset_graph.get(key)
        if key.to_user_string() == "adhoc_request":
            continue
        if key.path[0] == "tlc":
            assert node.is_observable and not node.is_materializable, key
            continue
        assert node.automation_condition is not None, key


def test_the_site_sensor_observes_every_month_of_the_sample_source(repo, settings):
    sensor = repo.get_sensor_def("tlc_site_sensor")
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(
            instance=instance, resources=repo.get_top_level_resources()
        )
        result = sensor(context)
    observed = {(e.asset_key.to_user_string(), e.partition) for e in result.asset_events}
    assert observed == {
        ("tlc/taxi_zone_lookup", None),
        ("tlc/yellow_tripdata", "2023-01-01"),
        ("tlc/yellow_tripdata", "2023-02-01"),
        ("tlc/yellow_tripdata", "2023-03-01"),
    }
    assert result.skip_reason.skip_message.startswith("3 of 3 months published")


def test_warehouse_assets_share_one_pool(repo):
    """Everything that opens the DuckDB warehouse queues on the same single-slot pool."""
    touching = EXPECTED_ASSETS - {
        "taxi_trips_file",
        "taxi_zones_file",
        "tlc/yellow_tripdata",
        "tlc/taxi_zone_lookup",
    }
    for name in touching:
        assets_def = repo.assets_defs_by_key[dg.AssetKey(name)]
        pools = {assets_def.node_def.pool} if hasattr(assets_def.node_def, "pool") else set()
        assert pools == {"duckdb_warehouse"}, name


def test_every_job_exists(repo):
    names = set(repo.job_names)
    assert {
        "trip_update_job",
        "daily_metrics_job",
        "weekly_update_job",
        "dbt_models_job",
        "publish_job",
        "adhoc_request_job",
    } <= names


def test_trip_update_job_leaves_out_stg_trips_and_downstream(repo):
    job = repo.get_job("trip_update_job")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {
        "taxi_trips_file",
        "taxi_trips",
        "taxi_zones_file",
        "taxi_zones",
        "stg_zones",
    }


def test_no_schedule_requests_months_by_the_calendar(repo):
    """The TLC publishes late and re-publishes: months follow the site (tlc_site_sensor and the
    automation), so the only schedule left is the unpartitioned dbt models'."""
    assert [schedule.name for schedule in repo.schedule_defs] == ["dbt_models_job_schedule"]


def test_dbt_models_schedule_builds_the_unpartitioned_models(repo):
    definition = repo.get_schedule_def("dbt_models_job_schedule")
    with dg.build_schedule_context(scheduled_execution_time=datetime(2023, 2, 1, 5)) as context:
        data = definition.evaluate_tick(context)
    assert len(data.run_requests) == 1
    job = repo.get_job("dbt_models_job")
    selected = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert selected == {"stg_trips", "stg_zones", "location_metrics"}


def _evaluate(requests_dir, cursor=None):
    folders = Folders(
        outputs_dir="/unused", requests_dir=str(requests_dir), published_database="/unused"
    )
    context = dg.build_sensor_context(cursor=cursor, resources={"folders": folders})
    return adhoc_request_sensor(context)


def test_request_sensor_launches_one_run_per_new_or_changed_file(tmp_path):
    good = tmp_path / "queens.json"
    good.write_text(
        json.dumps({"borough": "Queens", "start_date": "2023-01-02", "end_date": "2023-01-09"})
    )
    first = _evaluate(tmp_path)
    [request] = first.run_requests
    config = request.run_config["ops"]["adhoc_request"]["config"]
    assert config == {
        "filename": "queens.json",
        "borough": "Queens",
        "start_date": "2023-01-02",
        "end_date": "2023-01-09",
    }
    # nothing new: no run
    assert not _evaluate(tmp_path, first.cursor).run_requests
    # the file changes: one more run, with a new run key
    good.write_text(
        json.dumps({"borough": "Queens", "start_date": "2023-01-02", "end_date": "2023-01-20"})
    )
    later = time.time() + 5
    os.utime(good, (later, later))
    [again] = _evaluate(tmp_path, first.cursor).run_requests
    assert again.run_key != request.run_key


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        ("{not json", "not readable JSON"),
        ('["Queens"]', "expected a JSON object"),
        ('{"borough": "Queens", "start_date": "2023-01-02"}', "end_date"),
        (
            '{"borough": "Queens", "start_date": "2023-13-02", "end_date": "2023-01-09"}',
            "YYYY-MM-DD",
        ),
        ('{"borough": "Queens", "start_date": "2023-01-09", "end_date": "2023-01-02"}', "before"),
        ('{"borough": "Queens", "start_date": "2023-01-02"}', "bad.json: missing key end_date;"),
        ('{"borough": "Queens"}', "missing key start_date; missing key end_date;"),
        (
            '{"borough": "Queens", "start_date": "2023-01-02", "end_date": "2023-01-09", '
            '"colour": "red"}',
            "unknown key colour; a request holds exactly the keys borough, start_date, end_date",
        ),
        (
            '{"filename": "x.json", "borough": "Queens", "start_date": "2023-01-02", '
            '"end_date": "2023-01-09"}',
            "unknown key filename;",
        ),
        (
            '{"borough": 7, "start_date": "2023-01-02", "end_date": "2023-01-09"}',
            "borough: Input should be a valid string (got 7)",
        ),
        (
            '{"borough": "Queens", "start_date": null, "end_date": "2023-01-09"}',
            "start_date: Input should be a valid string (got None)",
        ),
        ("", "not readable JSON"),
    ],
)
def test_request_sensor_reports_a_bad_file_and_still_serves_the_good_ones(tmp_path, content, cause):
    (tmp_path / "bad.json").write_text(content)
    (tmp_path / "good.json").write_text(
        json.dumps({"borough": "Bronx", "start_date": "2023-01-01", "end_date": "2023-01-31"})
    )
    result = _evaluate(tmp_path)
    assert [r.tags["adhoc_request/file"] for r in result.run_requests] == ["good.json"]
    # only the bad file left: the tick says which file and why
    (tmp_path / "good.json").unlink()
    result = _evaluate(tmp_path)
    assert not result.run_requests
    assert (
        "bad.json" in result.skip_reason.skip_message and cause in result.skip_reason.skip_message
    )


def test_request_sensor_reads_a_file_saved_with_a_byte_order_mark(tmp_path):
    # Windows editors (Notepad, PowerShell's Out-File) save UTF-8 JSON with a BOM.
    request = {"borough": "Queens", "start_date": "2023-01-02", "end_date": "2023-01-09"}
    (tmp_path / "bom.json").write_text(json.dumps(request), encoding="utf-8-sig")
    (tmp_path / "latin1.json").write_bytes(
        json.dumps({**request, "borough": "Qu\xe9"}, ensure_ascii=False).encode("latin-1")
    )
    result = _evaluate(tmp_path)
    [run] = result.run_requests
    assert run.run_config["ops"]["adhoc_request"]["config"] == {"filename": "bom.json", **request}
    # a file in another encoding is still refused, by name
    (tmp_path / "bom.json").unlink()
    result = _evaluate(tmp_path)
    assert "latin1.json: not readable JSON" in result.skip_reason.skip_message


def test_dbt_resource_knows_its_dbt_version_without_starting_dbt(defs):
    # TaxiDbtCliResource reads the version from the installed dbt-core instead of running
    # `dbt --version` on every step; it must be the version the dbt executable reports.
    import re
    import subprocess

    from dagster_dbt import DbtCliResource

    resource = defs.resources["dbt"]
    assert type(resource).__name__ == "TaxiDbtCliResource"
    reported = subprocess.run(
        [resource.dbt_executable, "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert str(resource._cli_version) == re.search(r"(\d+\.\d+\.\d+)", reported).group(1)
    assert str(resource._cli_version) == str(DbtCliResource._cli_version.func(resource))


def test_importing_the_code_location_reads_and_changes_no_environment():
    """Settings are read when Dagster calls `defs()`, never at import: a malformed setting does
    not break an import, and importing writes nothing to the environment."""
    code = (
        "import importlib, os, pkgutil, taxi_pipeline\n"
        "before = dict(os.environ)\n"
        "for module in pkgutil.walk_packages(taxi_pipeline.__path__, 'taxi_pipeline.'):\n"
        "    importlib.import_module(module.name)\n"
        "assert dict(os.environ) == before, set(os.environ.items()) ^ set(before.items())\n"
    )
    env = {**os.environ, "TAXI_START_MONTH": "not-a-month", "TAXI_DATA_SOURCE": "nowhere"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_step_failing_inside_the_warehouse_connection_releases_the_file(tmp_path):
    """Another process (dbt, the next run) can open the warehouse right after a failed step."""
    from taxi_pipeline.resources import Warehouse

    database = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(database=str(database))
    with pytest.raises(RuntimeError), warehouse.get_connection() as conn:
        conn.execute("create table t (x integer)")
        raise RuntimeError("the step fails")
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(database)!r}).close()"],
        capture_output=True,
        text=True,
    )
    assert opened.returncode == 0, opened.stderr


def _policies(defs: dg.Definitions) -> dict[str, str]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): str(graph.get(key).freshness_policy.fail_window.to_timedelta())
        for key in graph.get_all_asset_keys()
        if graph.get(key).freshness_policy
    }


def test_every_asset_a_user_reads_has_a_freshness_policy_from_how_the_data_arrives(defs):
    from conftest import TEST_ENV

    from taxi_pipeline.definitions import build_defs
    from taxi_pipeline.settings import load_settings

    # a closed range: no month can arrive, so only what the morning's build refreshes has one
    assert _policies(defs) == {
        "published_warehouse": "1 day, 2:00:00",
        "location_metrics": "1 day, 2:00:00",
        "airport_trips": "1 day, 2:00:00",
    }
    open_range = load_settings(
        {**TEST_ENV, "TAXI_END_MONTH": "latest", "TAXI_SNAPSHOT_MAX_AGE": "30h"}
    )
    assert _policies(build_defs(open_range)) == {
        "published_warehouse": "1 day, 6:00:00",
        "location_metrics": "1 day, 6:00:00",
        "airport_trips": "1 day, 6:00:00",
        "daily_metrics": "45 days, 0:00:00",
        "trips_by_week": "45 days, 0:00:00",
    }


def test_the_alert_sensor_runs_by_default_and_requests_nothing(repo):
    sensor = repo.get_sensor_def("alert_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds == 30
    assert not sensor.targets
