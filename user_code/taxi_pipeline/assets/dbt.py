"""The dbt project as assets: one graph with the loaders, dbt tests as asset checks.

Two `@dbt_assets` definitions because `daily_metrics` is partitioned by day and the other
models are not; a Dagster job cannot mix the two, and a model can only be in one definition.
"""

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)
from dagster_dbt.core.dbt_cli_invocation import PARTIAL_PARSE_FILE_NAME

from taxi_pipeline.automation import MONTH_LOADS, keep_fresh
from taxi_pipeline.pools import WAREHOUSE_POOL

# Models partitioned by day carry this dbt tag (e.g. models/marts/daily_metrics.sql): a new
# daily model only needs the tag to join them.
DAILY_MODELS = "tag:daily_partitioned"

# dbt source table -> the Dagster asset that loads it, so lineage is one graph.
SOURCE_ASSETS = {("raw_taxis", "trips"): "taxi_trips", ("raw_taxis", "zones"): "taxi_zones"}


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


def _build(context: dg.AssetExecutionContext, dbt: DbtCliResource, args: list[str]):
    # Row counts and column types on every materialization; both query the warehouse after
    # each model, inside this step, so they stay within the pool slot.
    invocation = dbt.cli(["build", *args, *_unselected_source_tests(context)], context=context)
    try:
        yield from invocation.stream().fetch_row_counts().fetch_column_metadata()
    finally:
        _release_warehouse(invocation.adapter)
        _keep_parse_state(invocation.target_path)


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
    def dbt_analytics(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        yield from _build(context, dbt, [])

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
    def dbt_daily_metrics(context: dg.AssetExecutionContext, dbt: DbtCliResource):
        yield from _build(context, dbt, event_time_args(context.partition_time_window))

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
