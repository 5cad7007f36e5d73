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
    dbt_assets,
)
from dagster_dbt.core.dbt_cli_invocation import PARTIAL_PARSE_FILE_NAME

from taxi_pipeline.automation import keep_fresh
from taxi_pipeline.partitions import daily_partition
from taxi_pipeline.project import dbt_project
from taxi_pipeline.resources import WAREHOUSE_POOL

DAILY_MODELS = "daily_metrics"

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
    invocation = dbt.cli(["build", *args], context=context)
    try:
        yield from invocation.stream().fetch_row_counts().fetch_column_metadata()
    finally:
        _release_warehouse(invocation.adapter)
        _keep_parse_state(invocation.target_path)


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


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    exclude=DAILY_MODELS,
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
)
def dbt_analytics(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from _build(context, dbt, [])


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    select=DAILY_MODELS,
    partitions_def=daily_partition,
    # A backfill of many days is one run and one `dbt build` over the whole window, not one
    # container start per day.
    backfill_policy=dg.BackfillPolicy.single_run(),
    dagster_dbt_translator=translator,
    pool=WAREHOUSE_POOL,
)
def dbt_daily_metrics(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    yield from _build(context, dbt, event_time_args(context.partition_time_window))


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
