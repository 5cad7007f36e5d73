"""dbt's options from the Launchpad (assets/dbt.py: DbtRunConfig), on copies of the dbt project.

A pipeline on January of sample data is built in-process from a copy of analytics/ (zones, the
month, the dbt models, the 31 days of daily_metrics as one run, the snapshot). Then:

- daily_metrics gains a column in the copy (a new deployment): an incremental run fails and names
  the fix, leaving the table as it was; a full refresh over all days, one run started with run
  config, succeeds; the snapshot is then published with the new column;
- a full refresh of fewer days than all is refused before dbt starts;
- a model added on top of location_metrics, in a fresh warehouse where location_metrics was
  never built, fails on its own and builds (its test too) with `defer: true`, reading the
  published snapshot's location_metrics.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml
from conftest import TEST_ENV
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from taxi_pipeline.definitions import build_defs
from taxi_pipeline.project import ANALYTICS_DIR, build_dbt_project
from taxi_pipeline.settings import Settings, load_settings

FIRST_DAY, LAST_DAY = "2023-01-01", "2023-01-31"
FULL_REFRESH = {"ops": {"dbt_daily_metrics": {"config": {"full_refresh": True}}}}
# What the failures must tell the user to type into the Launchpad, verbatim.
LAUNCHPAD_YAML = "ops: {dbt_daily_metrics: {config: {full_refresh: true}}}"
RANGE_TAGS_TEXT = (
    f"dagster/asset_partition_range_start: {FIRST_DAY} and "
    f"dagster/asset_partition_range_end: {LAST_DAY}"
)


def _range_tags(first: str, last: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


def _settings(data_dir: Path, **extra: str) -> Settings:
    env = {**TEST_ENV, "TAXI_SAMPLE_TRIPS_PER_MONTH": "400", "TAXI_DATA_DIR": str(data_dir)}
    return load_settings(
        {**env, "TAXI_START_MONTH": "2023-01", "TAXI_END_MONTH": "2023-01", **extra}
    )


def _copy_project(target: Path) -> Path:
    shutil.copytree(ANALYTICS_DIR, target, ignore=shutil.ignore_patterns("target", "logs"))
    return target


class Deployment:
    """The code location built from a copy of the dbt project, run on one Dagster instance."""

    def __init__(self, settings: Settings, project_dir: Path, instance: dg.DagsterInstance):
        self.settings, self.project_dir, self.instance = settings, project_dir, instance
        self.deploy()

    def deploy(self) -> None:
        """Parse the copy as it is now (as the image build does) and load the definitions."""
        project = build_dbt_project(self.settings, self.project_dir)
        project.preparer.prepare(project)
        self.defs = build_defs(self.settings, self.project_dir)

    def run(self, *keys: str, ok: bool = True, **kwargs) -> dg.ExecuteInProcessResult:
        assets = {self.defs.get_assets_def(key) for key in keys}
        result = dg.materialize(
            list(assets),
            selection=list(keys),
            resources=self.defs.resources,
            instance=self.instance,
            raise_on_error=False,
            **kwargs,
        )
        assert result.success == ok, _failure(result)
        if ok:
            for check in result.get_asset_check_evaluations():
                assert check.passed, check.asset_check_key.to_user_string()
        return result

    def dbt_log(self, result: dg.ExecuteInProcessResult) -> str:
        """The debug log of the run's one dbt invocation (its own folder in DBT_TARGET_PATH)."""
        [log] = Path(os.environ["DBT_TARGET_PATH"]).glob(f"*-{result.run_id[:7]}-*/dbt.log")
        return log.read_text()

    def query(self, sql: str, database: Path | None = None) -> list[tuple]:
        with duckdb.connect(str(database or self.settings.duckdb_database), read_only=True) as c:
            return c.execute(sql).fetchall()


def _failure(result: dg.ExecuteInProcessResult) -> str:
    """The message of the run's failed step (a dg.Failure's description, or the error)."""
    for event in result.get_step_failure_events():
        data = event.step_failure_data
        if data.user_failure_data is not None:
            return data.user_failure_data.description
        return data.error.to_string()
    return "(no step failed)"


def _columns(deployment: Deployment, table: str, database: Path | None = None) -> list[str]:
    return [row[0] for row in deployment.query(f"describe {table}", database)]


def _daily(deployment: Deployment, columns: str, database: Path | None = None) -> list[tuple]:
    return deployment.query(f"select {columns} from daily_metrics order by 1", database)


OLD_COLUMNS = (
    "date_of_business, trip_count, avg_trip_duration_minutes, avg_fare_per_trip, "
    "trips_over_30_min, share_over_30_min"
)


@pytest.mark.parametrize(
    ("job", "op"), [("daily_metrics_job", "dbt_daily_metrics"), ("dbt_models_job", "dbt_analytics")]
)
def test_both_dbt_jobs_take_the_launchpad_yaml(defs: dg.Definitions, job: str, op: str):
    launchpad = yaml.safe_load(f"ops: {{{op}: {{config: {{full_refresh: true, defer: true}}}}}}")
    job_def = defs.resolve_job_def(job)
    config = dg.validate_run_config(job_def, launchpad)["ops"][op]["config"]
    assert config == {"full_refresh": True, "defer": True}
    # Without config (automation, the schedule): dbt's plain incremental build.
    config = dg.validate_run_config(job_def, {})["ops"][op]["config"]
    assert config == {"full_refresh": False, "defer": False}
    with pytest.raises(dg.DagsterInvalidConfigError, match="fullrefresh"):
        dg.validate_run_config(job_def, {"ops": {op: {"config": {"fullrefresh": True}}}})


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """January built from a copy of analytics/ and published, as the stack would have it."""
    root = tmp_path_factory.mktemp("dbt-config")
    with pytest.MonkeyPatch.context() as env, dg.instance_for_test() as instance:
        # dbt's per-invocation folders and handed-on parse state of these copies stay apart from
        # those of analytics/ (conftest: DBT_TARGET_PATH).
        env.setenv("DBT_TARGET_PATH", str(root / "dbt-target"))
        deployment = Deployment(_settings(root / "data"), _copy_project(root / "v1"), instance)
        deployment.run("taxi_zones_file", "taxi_zones")
        deployment.run("taxi_trips_file", "taxi_trips", partition_key=FIRST_DAY)
        deployment.run("stg_trips", "stg_zones", "location_metrics")
        deployment.run("daily_metrics", tags=_range_tags(FIRST_DAY, LAST_DAY))
        deployment.run("published_warehouse")
        yield deployment


def test_a_partial_full_refresh_is_refused_before_dbt_runs(pipeline: Deployment):
    before = _daily(pipeline, "*")
    result = pipeline.run(
        "daily_metrics",
        ok=False,
        run_config=FULL_REFRESH,
        tags=_range_tags("2023-01-10", "2023-01-12"),
    )
    message = _failure(result)
    assert message.startswith("Refusing full_refresh: true over 2023-01-10...2023-01-12")
    assert "only this run's 3 of its 31 partitions, and would drop the others" in message
    assert "Launchpad of daily_metrics_job" in message and LAUNCHPAD_YAML in message
    assert RANGE_TAGS_TEXT in message
    assert not result.get_asset_materialization_events()
    assert _daily(pipeline, "*") == before


def _add_max_fare_column(project_dir: Path) -> None:
    """What a developer does: a new column in the model's SQL, described in its YAML."""
    sql = project_dir / "models" / "marts" / "daily_metrics.sql"
    text = sql.read_text()
    aggregate = "        avg(fare_amount) as avg_fare_per_trip,\n"
    last = "    cast(trips_over_30_min as double) / trip_count as share_over_30_min\n"
    assert text.count(aggregate) == 1 and text.count(last) == 1
    text = text.replace(aggregate, aggregate + "        max(fare_amount) as max_fare,\n")
    sql.write_text(text.replace(last, last.rstrip("\n") + ",\n    max_fare\n"))
    marts = project_dir / "models" / "marts" / "_marts.yml"
    spec = yaml.safe_load(marts.read_text())
    [model] = [model for model in spec["models"] if model["name"] == "daily_metrics"]
    model["columns"].append(
        {"name": "max_fare", "description": "Highest fare_amount of the day in USD."}
    )
    marts.write_text(yaml.safe_dump(spec, sort_keys=False))


def test_a_changed_column_fails_incrementally_then_a_full_refresh_rebuilds_and_publishes(
    pipeline: Deployment,
):
    before = _daily(pipeline, OLD_COLUMNS)
    assert len(before) == 31
    _add_max_fare_column(pipeline.project_dir)
    pipeline.deploy()

    # Incremental, one day: dbt refuses the changed columns; the failure names the fix.
    failed = pipeline.run("daily_metrics", ok=False, partition_key="2023-01-15")
    message = _failure(failed)
    assert message.startswith("daily_metrics: the model's columns changed (new: max_fare; ")
    assert "on_schema_change='fail'" in message and "Nothing was written" in message
    assert "Launchpad of daily_metrics_job (or shift-click Materialize on daily_metrics)" in (
        message
    )
    assert LAUNCHPAD_YAML in message and RANGE_TAGS_TEXT in message
    assert f"one run over all its partitions ({FIRST_DAY}...{LAST_DAY})" in message
    assert _daily(pipeline, "*") == _daily(pipeline, OLD_COLUMNS) == before

    # The fix as the message says: one run with the run config over the whole range.
    rebuilt = pipeline.run(
        "daily_metrics", run_config=FULL_REFRESH, tags=_range_tags(FIRST_DAY, LAST_DAY)
    )
    days = {
        event.partition
        for event in rebuilt.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey("daily_metrics")
    }
    assert len(days) == 31
    # A flag, not a var: dbt reused the parse state of the failed run.
    log = pipeline.dbt_log(rebuilt)
    assert "--full-refresh" in log and "Nothing changed, skipping partial parsing." in log
    assert "max_fare" in _columns(pipeline, "daily_metrics")
    # Every day as the incremental runs had built it, plus the new column, recounted.
    assert _daily(pipeline, OLD_COLUMNS) == before
    assert _daily(pipeline, "date_of_business, max_fare") == pipeline.query(
        "select cast(pickup_datetime as date), max(fare_amount) from stg_trips "
        "group by 1 order by 1"
    )
    # Incremental again afterwards, with the new column.
    pipeline.run("daily_metrics", partition_key="2023-01-15")
    assert _daily(pipeline, OLD_COLUMNS) == before

    pipeline.run("published_warehouse")
    snapshot = pipeline.settings.published_database
    assert "max_fare" in _columns(pipeline, "daily_metrics", snapshot)
    assert _daily(pipeline, "*", snapshot) == _daily(pipeline, "*")


BOROUGH_MODEL = """
select
    pickup_borough,
    sum(trips) as trips
from {{ ref('location_metrics') }}
group by 1
"""
BOROUGH_TEST = """
{{ config(meta={'dagster': {'ref': {'name': 'trips_by_borough'}}}) }}
-- Fails when the boroughs do not add up to the zones they are built from.
select sum(trips) as trips
from {{ ref('trips_by_borough') }}
having sum(trips) <> (select sum(trips) from {{ ref('location_metrics') }})
"""


def test_defer_builds_a_model_whose_parent_is_only_published(pipeline: Deployment, tmp_path):
    """A developer's new model on top of location_metrics, in a fresh warehouse: its parent has
    never been built there. Only deferring to the published snapshot lets it (and its test,
    which reads the parent too) build."""
    project_dir = _copy_project(tmp_path / "analytics")
    (project_dir / "models" / "marts" / "trips_by_borough.sql").write_text(BOROUGH_MODEL)
    (project_dir / "tests" / "assert_trips_by_borough_add_up.sql").write_text(BOROUGH_TEST)
    snapshot = pipeline.settings.published_database
    published_bytes = snapshot.read_bytes()
    fresh = _settings(tmp_path / "data", TAXI_PUBLISHED_DATABASE=str(snapshot))
    deployment = Deployment(fresh, project_dir, pipeline.instance)

    without = deployment.run("trips_by_borough", ok=False)
    assert "location_metrics does not exist" in _failure(without)

    defer = {"ops": {"dbt_analytics": {"config": {"defer": True}}}}
    built = deployment.run("trips_by_borough", run_config=defer)
    checks = {check.asset_check_key.name for check in built.get_asset_check_evaluations()}
    assert "assert_trips_by_borough_add_up" in checks
    log = deployment.dbt_log(built)
    assert "--defer --defer-state" in log and "Nothing changed, skipping partial parsing." in log
    assert deployment.query("select * from trips_by_borough order by 1") == pipeline.query(
        "select pickup_borough, sum(trips) from location_metrics group by 1 order by 1", snapshot
    )
    # Its parent was read, not built: the fresh warehouse holds the new model only.
    assert deployment.query(
        "select table_name from information_schema.tables where table_schema = 'main'"
    ) == [("trips_by_borough",)]
    assert snapshot.read_bytes() == published_bytes

    nothing_published = _settings(
        tmp_path / "data", TAXI_PUBLISHED_DATABASE=str(tmp_path / "none" / "taxi.duckdb")
    )
    deployment.defs = build_defs(nothing_published, project_dir)  # parsed already
    refused = deployment.run("trips_by_borough", ok=False, run_config=defer)
    assert "nothing is published at" in _failure(refused)
    assert "materialize published_warehouse first" in _failure(refused)
