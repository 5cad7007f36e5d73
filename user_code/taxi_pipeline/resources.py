"""Resources: where the data comes from, where it lands, and the dbt CLI.

Built from `Settings` in one function, so the values shown on the Resources page of the UI are
exactly the deployment's.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

import dagster as dg
from dagster_dbt import DbtCliResource, DbtProject
from dagster_duckdb import DuckDBResource

from taxi_pipeline.project import dbt_executable, dbt_vars
from taxi_pipeline.settings import Settings
from taxi_pipeline.sources import layout, sample, tlc
from taxi_pipeline.sources.publication import ObservationError, Published, observe_many


class Warehouse(DuckDBResource):
    """The DuckDB file the loaders and dbt write (never the snapshot Superset reads)."""

    @contextmanager
    def get_connection(self):
        # dagster-duckdb closes its connection only when the block ends normally: a step that
        # failed inside it kept the file locked for the rest of the process, and the in-process
        # executor runs a run's other steps (dbt's own process included) in that process.
        with super().get_connection() as conn:
            try:
                yield conn
            finally:
                conn.close()

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # DuckDB creates the file but not its folder: a fresh volume has neither.
        Path(self.database).parent.mkdir(parents=True, exist_ok=True)


class TaxiDataSource(dg.ConfigurableResource):
    """Fetches the monthly trip files and the zone lookup into `raw_dir`.

    `nyc-tlc` downloads the TLC's public files; `sample` writes deterministic synthetic files
    in the same layout, so everything downstream is identical whichever source is used.
    """

    source: str
    tlc_base_url: str
    sample_trips_per_month: int
    raw_dir: str

    def trips_path(self, month: str) -> Path:
        return Path(self.raw_dir) / layout.trips_file_name(month)

    def zones_path(self) -> Path:
        return Path(self.raw_dir) / layout.ZONES_FILE_NAME

    def fetch_trips(self, month: str, log: logging.Logger) -> Path:
        raw_dir = Path(self.raw_dir)
        raw_dir.mkdir(parents=True, exist_ok=True)
        if self.source == "sample":
            return sample.write_sample_trips(month, raw_dir, rows=self.sample_trips_per_month)
        return tlc.download_trips(month, raw_dir, self.tlc_base_url, on_retry=_log_retry(log))

    def observe(
        self, months: Sequence[str]
    ) -> tuple[Published | ObservationError, dict[str, Published | ObservationError | None]]:
        """What the source holds now: the zone lookup, and each month (None: not published).

        The zone lookup is asked first and alone: when the site is down, that one error says so
        without a failed request for every month of the range.
        """
        if self.source == "sample":
            # Generated on demand, so always "published"; its content is fixed by the month and
            # the row count, so a new TAXI_SAMPLE_TRIPS_PER_MONTH is a new version of each file.
            def generated(name: str) -> Published:
                return Published(
                    f"sample:{name}",
                    size=None,
                    fingerprint=f"rows={self.sample_trips_per_month}",
                    method="generated locally (TAXI_DATA_SOURCE=sample)",
                )

            zones = generated(layout.ZONES_FILE_NAME)
            return zones, {m: generated(layout.trips_file_name(m)) for m in months}
        zones_url = tlc.zones_url(self.tlc_base_url)
        zones = observe_many([zones_url])[zones_url]
        if zones is None:
            zones = ObservationError(f"{zones_url} was not found. Fix: {tlc.ZONES_NOT_FOUND_FIX}.")
        if isinstance(zones, ObservationError):
            return zones, {}
        urls = {month: tlc.trips_url(month, self.tlc_base_url) for month in months}
        answers = observe_many(urls.values())
        return zones, {month: answers[url] for month, url in urls.items()}

    def fetch_zones(self, log: logging.Logger) -> Path:
        raw_dir = Path(self.raw_dir)
        raw_dir.mkdir(parents=True, exist_ok=True)
        if self.source == "sample":
            return sample.write_sample_zones(raw_dir)
        return tlc.download_zones(raw_dir, self.tlc_base_url, on_retry=_log_retry(log))


def _log_retry(log: logging.Logger):
    def on_retry(attempt: int, cause: str, delay: float) -> None:
        log.warning(f"Download attempt {attempt} failed ({cause}); retrying in {delay:.0f} s")

    return on_retry


class Folders(dg.ConfigurableResource):
    """Files outside the warehouse: outputs of Python assets, ad-hoc requests, the snapshot."""

    outputs_dir: str
    requests_dir: str
    published_database: str

    def output(self, *parts: str) -> Path:
        path = Path(self.outputs_dir).joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path


class TaxiDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource, told where the warehouse is and minus one process start
    per dbt step.

    Every dbt command gets `warehouse_path` as a dbt var (`taxi_pipeline.project.dbt_vars`): the
    profile reads the warehouse file from it, not from the process environment.

    dagster-dbt learns which dbt it drives by running `dbt --version` once per resource instance,
    and a run builds its resources anew: every dbt step started a whole second dbt process
    (1.5-3 s on 2 cores) before the real one. The dbt here is dbt-core from this very
    environment (pinned in uv.lock), so its version is read from the installed package instead;
    tests/test_definitions.py checks that both answers agree.
    """

    warehouse_path: str

    def cli(self, args: Sequence[str], **kwargs):
        return super().cli([*args, *dbt_vars(Path(self.warehouse_path))], **kwargs)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        super().setup_for_execution(context)
        # dbt-duckdb creates the warehouse file but not its folder: a dbt step that runs first
        # on a fresh data folder (`defer: true` in a new `dg dev`, before anything is loaded).
        Path(self.warehouse_path).parent.mkdir(parents=True, exist_ok=True)

    @cached_property
    def _cli_version(self):  # overrides a private member of DbtCliResource (dagster-dbt 0.29)
        from packaging import version

        return version.parse(installed_version("dbt-core"))


def build_resources(
    settings: Settings, dbt_project: DbtProject
) -> dict[str, dg.ConfigurableResource]:
    return {
        "taxi_data": TaxiDataSource(
            source=settings.data_source,
            tlc_base_url=settings.tlc_base_url,
            sample_trips_per_month=settings.sample_trips_per_month,
            raw_dir=str(settings.raw_dir),
        ),
        "warehouse": Warehouse(database=str(settings.duckdb_database)),
        "folders": Folders(
            outputs_dir=str(settings.outputs_dir),
            requests_dir=str(settings.requests_dir),
            published_database=str(settings.published_database),
        ),
        "dbt": TaxiDbtCliResource(
            project_dir=dbt_project,
            dbt_executable=dbt_executable(),
            warehouse_path=str(settings.duckdb_database),
        ),
    }
