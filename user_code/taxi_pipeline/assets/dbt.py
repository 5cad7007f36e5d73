"""The dbt project as assets: one graph with the loaders, dbt tests as asset checks.

Two `@dbt_assets` definitions because `daily_metrics` is partitioned by day and the other
models are not; a Dagster job cannot mix the two, and a model can only be in one definition.
"""

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtCliRuntimeError,
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
    get_asset_key_for_model,
)
from dagster_dbt.asset_utils import get_manifest_and_translator_from_dbt_assets
from dagster_dbt.core.dbt_cli_invocation import PARTIAL_PARSE_FILE_NAME, DbtCliInvocation
from pydantic import Field

from taxi_pipeline.assets.publish import published_tables
from taxi_pipeline.automation import MONTH_LOADS, keep_fresh
from taxi_pipeline.pools import WAREHOUSE_POOL
from taxi_pipeline.project import write_published_state
from taxi_pipeline.resources import Folders

# Models partitioned by day carry this dbt tag (e.g. models/marts/daily_metrics.sql): a new
# daily model only needs the tag to join them.
DAILY_MODELS = "tag:daily_partitioned"

# dbt source table -> the Dagster asset that loads it, so lineage is one graph.
SOURCE_ASSETS = {("raw_taxis", "trips"): "taxi_trips", ("raw_taxis", "zones"): "taxi_zones"}

# The jobs that run each definition by hand (jobs.py, schedules.py), named here because the
# failures below tell the user which one to launch.
MODELS_JOB = "dbt_models_job"
DAILY_JOB = "daily_metrics_job"

# dbt-core's error when an incremental model with on_schema_change='fail' (daily_metrics) meets
# a table whose columns differ from the model's (dbt/include/global_project/macros/
# materializations/models/incremental/on_schema_change.sql, dbt-core 1.11).
SCHEMA_CHANGED = "The source and target schemas on this incremental model are out of sync"


class DbtRunConfig(dg.Config):
    """dbt's options for one run, set in the Launchpad. Both `@dbt_assets` take it, under their
    op's name: `dbt_analytics` (the unpartitioned models), `dbt_daily_metrics` (the daily ones):

        ops: {dbt_daily_metrics: {config: {full_refresh: true}}}

    Runs without config (automation, the schedule, a plain Materialize) get the defaults: dbt's
    incremental build, no deferral. Both options become dbt flags, never `--vars`: dbt re-parses
    the whole project whenever its vars change (project.py: dbt_vars), and flags leave its parse
    state alone.
    """

    full_refresh: bool = Field(
        default=False,
        description="dbt build --full-refresh: rebuild incremental models from scratch, e.g. "
        "after a change of their columns. For daily_metrics the run must cover all its "
        "partitions (a run over fewer days is refused: it would drop the others).",
    )
    defer: bool = Field(
        default=False,
        description="dbt build --defer to the published snapshot: a parent this run does not "
        "build and the warehouse lacks is read from the snapshot Superset serves (the marts), "
        "so one changed model builds in a fresh warehouse without its parents.",
    )


class TaxiDbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            source = (dbt_resource_props["source_name"], dbt_resource_props["name"])
            if source in SOURCE_ASSETS:
                return dg.AssetKey(SOURCE_ASSETS[source])
        return super().get_asset_key(dbt_resource_props)

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition | None:
        return keep_fresh()

    def get_asset_spec(self, manifest, unique_id, project) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if DAILY_MODELS.removeprefix("tag:") not in props.get("tags", []):
            return spec
        # A day reads the month it falls in, through the unpartitioned staging views: depend on
        # the month's load too, and follow its updates rather than the views' (automation.py).
        views = dg.AssetSelection.assets(*(dep.asset_key for dep in spec.deps))
        return spec.merge_attributes(deps=[MONTH_LOADS]).replace_attributes(
            automation_condition=keep_fresh(ignore_updates_of=views)
        )


translator = TaxiDbtTranslator(
    settings=DagsterDbtTranslatorSettings(
        enable_asset_checks=True,
        # tests on raw_taxis.* become checks of taxi_trips / taxi_zones
        enable_source_tests_as_checks=True,
        enable_code_references=True,
    )
)


def _build(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    config: DbtRunConfig,
    folders: Folders,
    job: str,
    args: list[str],
):
    """`dbt build` of what the run selected, with the run config's flags; `job` is the job that
    runs this definition by hand, which a failure names as the fix."""
    if config.full_refresh:
        _refuse_partial_full_refresh(context, job)
        args = [*args, "--full-refresh"]
    with _published_state(context, config, Path(folders.published_database)) as defer_args:
        # Row counts and column types on every materialization; both query the warehouse after
        # each model, inside this step, so they stay within the pool slot.
        invocation = dbt.cli(
            ["build", *args, *defer_args, *_unselected_source_tests(context)], context=context
        )
        try:
            yield from invocation.stream().fetch_row_counts().fetch_column_metadata()
        except DagsterDbtCliRuntimeError as error:
            failure = _schema_change_failure(context, invocation, job)
            if failure is None:
                raise
            raise failure from error
        finally:
            _release_warehouse(invocation.adapter)
            _keep_parse_state(invocation.target_path)


def _full_refresh_fix(context: dg.AssetExecutionContext, job: str, assets: str) -> str:
    """How to launch a full refresh of this definition from the UI: the job, the Launchpad's
    config, and for partitioned models the whole range as one run."""
    op = context.assets_def.op.name
    how = (
        f"in the Dagster UI open the Launchpad of {job} (or shift-click Materialize on {assets}) "
        f"and set the config ops: {{{op}: {{config: {{full_refresh: true}}}}}}"
    )
    partitions = context.assets_def.partitions_def
    if partitions is None:
        return f"{how}, then launch."
    first, last = partitions.get_first_partition_key(), partitions.get_last_partition_key()
    # A run launched from the Launchpad (where the config is set) with these two tags covers the
    # range: the single-run backfill policy lets one run materialize many partitions.
    return (
        f"{how}, and with 'Edit tags' dagster/asset_partition_range_start: {first} and "
        f"dagster/asset_partition_range_end: {last}, then launch: one run over all its "
        f"partitions ({first}...{last})."
    )


def _refuse_partial_full_refresh(context: dg.AssetExecutionContext, job: str) -> None:
    """A full refresh rebuilds a partitioned model from the run's window alone: over fewer than
    all partitions it would leave a table holding only those (daily_metrics.sql filters its
    trips to the window). Refused before dbt starts, so nothing changes."""
    partitions = context.assets_def.partitions_def
    if partitions is None:
        return
    run = context.partition_key_range
    first, last = partitions.get_first_partition_key(), partitions.get_last_partition_key()
    if (run.start, run.end) == (first, last):
        return
    assets = ", ".join(key.to_user_string() for key in sorted(context.selected_asset_keys))
    total = partitions.get_num_partitions()
    raise dg.Failure(
        f"Refusing full_refresh: true over {run.start}...{run.end}: a full refresh rebuilds "
        f"{assets} from scratch with only this run's {len(context.partition_keys)} of its "
        f"{total} partitions, and would drop the others. Nothing was run. Fix: "
        + _full_refresh_fix(context, job, assets)
        + " Or launch without full_refresh to rebuild just these partitions."
    )


def _schema_change_failure(
    context: dg.AssetExecutionContext, invocation: DbtCliInvocation, job: str
) -> dg.Failure | None:
    """The failure to raise when dbt refused an incremental model whose columns changed
    (on_schema_change='fail'): which model, which columns, and the full refresh that fixes it.
    None when dbt failed for another reason."""
    results = invocation.target_path / "run_results.json"
    if not results.exists():
        return None
    changed = [
        result
        for result in json.loads(results.read_text())["results"]
        if result["status"] == "error" and SCHEMA_CHANGED in (result.get("message") or "")
    ]
    if not changed:
        return None
    names = [invocation.manifest["nodes"][result["unique_id"]]["name"] for result in changed]
    assets = ", ".join(
        get_asset_key_for_model([context.assets_def], name).to_user_string() for name in names
    )
    return dg.Failure(
        f"{assets}: the model's columns changed ({_column_changes(changed[0]['message'])}), "
        "and an incremental run only adds rows to the existing table, whose columns it does not "
        "change (on_schema_change='fail'). Nothing was written: the table keeps its columns and "
        "rows. Fix: rebuild it once with a full refresh: "
        + _full_refresh_fix(context, job, assets)
        + " Later runs are incremental again."
    )


def _column_changes(message: str) -> str:
    """The columns dbt's message lists, in words: 'new: trips_per_hour; gone: none; ...'."""
    parts = []
    for label, what in (
        ("Source columns not in target", "new"),
        ("Target columns not in source", "gone"),
        ("New column types", "new type"),
    ):
        line = re.search(rf"{label}: (.*)", message)
        columns = re.findall(r"(?:column=|'column_name': )'([^']*)'", line[1]) if line else []
        parts.append(f"{what}: {', '.join(columns) or 'none'}")
    return "; ".join(parts)


@contextmanager
def _published_state(
    context: dg.AssetExecutionContext, config: DbtRunConfig, snapshot: Path
) -> Iterator[list[str]]:
    """dbt's defer arguments for `defer: true` (none otherwise), valid while the block lasts.

    What "defer to the published state" means with one DuckDB warehouse: the state is the
    published snapshot (the audited marts Superset reads) with the manifest describing it
    (project.py: write_published_state); dbt resolves a ref to a model that the run does not
    build and that the warehouse lacks to the snapshot's table. In the stack's own warehouse
    every parent exists and nothing changes; in a fresh one (`dg dev` on a new data folder)
    a model built on the marts builds without building them. Parents that are not published
    (the staging views over raw_taxis) still come from the warehouse.
    """
    if not config.defer:
        yield []
        return
    if not snapshot.exists():
        raise dg.Failure(
            f"defer: true reads the parents this run does not build from the published "
            f"snapshot, but nothing is published at {snapshot} yet. Fix: materialize "
            "published_warehouse first (or point TAXI_PUBLISHED_DATABASE at a copy of a "
            "published snapshot), or launch without defer."
        )
    # The manifest this definition was built from (how DbtCliResource.cli finds it too).
    manifest, *_ = get_manifest_and_translator_from_dbt_assets([context.assets_def])
    with tempfile.TemporaryDirectory(prefix="dbt-published-state-") as state:
        deferred = write_published_state(
            manifest, snapshot, published_tables(snapshot), Path(state)
        )
        context.log.info(
            f"Deferring to the published snapshot {snapshot}: a parent this run does not build "
            f"and the warehouse lacks is read from there ({', '.join(deferred) or 'no model'})."
        )
        yield ["--defer", "--defer-state", state]


def _unselected_source_tests(context: dg.AssetExecutionContext) -> list[str]:
    """`--exclude` for the tests on raw_taxis.* that this run did not select as asset checks.

    Those tests are checks of taxi_trips / taxi_zones, and dagster-dbt runs them whenever a model
    built from the source is built. A run that selected the model but not the loader's checks
    (automation requesting stg_trips, a click on one model) would get their results anyway, and
    Dagster logs "AssetCheckResult ... not selected. Letting it through" for each. They run, and
    are reported, in the runs that select them: Dagster adds a check to every run that
    materializes its asset (automation's "ride-along" checks), so they run after each load.
    """
    assets_def = context.assets_def
    sources = assets_def.get_upstream_input_keys(frozenset(context.selected_asset_keys))
    on_sources = assets_def.get_checks_targeting_keys(frozenset(sources))
    unselected = sorted(key.name for key in on_sources - context.selected_asset_check_keys)
    # One argument, space-separated (a union in dbt's selection syntax): dagster-dbt takes a
    # single value after --exclude.
    return ["--exclude", " ".join(unselected)] if unselected else []


def _keep_parse_state(invocation_target: Path) -> None:
    """Hand this invocation's parse state on to the next dbt step.

    dagster-dbt gives every invocation a target folder of its own under the current target path
    and seeds it with `<target path>/partial_parse.msgpack` when that file exists, but never
    writes the state back: without this every step after the first re-parsed the project (about
    4 s, 18 s on a busy machine). The image bakes the state in at build time; this keeps it
    current in long-lived processes (`dagster dev`, tests) and within a run. Atomic: a step that
    starts meanwhile reads the old file or the new one, never half of one.
    """
    produced = invocation_target / PARTIAL_PARSE_FILE_NAME
    if not produced.exists():
        return
    shared = invocation_target.parent / PARTIAL_PARSE_FILE_NAME
    staging = shared.with_name(f".{PARTIAL_PARSE_FILE_NAME}.{os.getpid()}")
    shutil.copyfile(produced, staging)
    os.replace(staging, shared)


def _release_warehouse(adapter) -> None:
    """Close the DuckDB handle that the metadata queries opened in this process.

    fetch_row_counts()/fetch_column_metadata() query through a dbt adapter in the step's own
    process, and dbt-duckdb keeps that handle open for the life of the process. Where steps
    share a process (the in-process executor, tests), the next step's dbt would find the file
    locked ("Could not set lock on file").
    """
    if adapter is None:
        return
    adapter.cleanup_connections()
    close_all = getattr(adapter.connections, "close_all_connections", None)
    if close_all is not None:
        close_all()


def build_dbt_assets(
    project: DbtProject, daily: dg.DailyPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """Every dbt model as an asset and every dbt test as an asset check: the daily-partitioned
    models (DAILY_MODELS) in one definition, all the others in another."""

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        exclude=DAILY_MODELS,
        dagster_dbt_translator=translator,
        pool=WAREHOUSE_POOL,
    )
    def dbt_analytics(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        folders: Folders,
        config: DbtRunConfig,
    ):
        yield from _build(context, dbt, config, folders, MODELS_JOB, [])

    @dbt_assets(
        manifest=project.manifest_path,
        project=project,
        select=DAILY_MODELS,
        partitions_def=daily,
        # A backfill of many days is one run and one `dbt build` over the whole window, not one
        # container start per day.
        backfill_policy=dg.BackfillPolicy.single_run(),
        dagster_dbt_translator=translator,
        pool=WAREHOUSE_POOL,
    )
    def dbt_daily_metrics(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        folders: Folders,
        config: DbtRunConfig,
    ):
        # With full_refresh the window must be the whole range (_refuse_partial_full_refresh):
        # the rebuilt table then holds exactly the days the incremental runs had produced.
        window = event_time_args(context.partition_time_window)
        yield from _build(context, dbt, config, folders, DAILY_JOB, window)

    return [dbt_analytics, dbt_daily_metrics]


def event_time_args(window: dg.TimeWindow) -> list[str]:
    """The partition window as dbt's event-time flags, which analytics/macros/trip_window.sql
    reads. Not `--vars`: a change of vars makes dbt re-parse the whole project.
    Naive timestamps: partitions are in UTC and the TLC's timestamps carry no zone."""
    return [
        "--event-time-start",
        window.start.strftime("%Y-%m-%dT%H:%M:%S"),
        "--event-time-end",
        window.end.strftime("%Y-%m-%dT%H:%M:%S"),
    ]
