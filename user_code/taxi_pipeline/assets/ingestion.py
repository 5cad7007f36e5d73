"""Raw files and their load into the warehouse's `raw_taxis` schema.

The `*_file` assets fetch (download or generate) and verify a file; the loaders normalise it and
replace exactly their slice of the warehouse in one transaction, so a bad file never touches
data already loaded and re-materializing a month is idempotent.
"""

from contextlib import contextmanager

import dagster as dg
import pyarrow.parquet as pq

from taxi_pipeline.assets.tlc_site import TRIP_FILES, ZONE_LOOKUP
from taxi_pipeline.automation import keep_fresh
from taxi_pipeline.pools import WAREHOUSE_POOL
from taxi_pipeline.resources import TaxiDataSource, Warehouse
from taxi_pipeline.sources.loading import LoadError, LoadReport, load_trips_month, load_zones
from taxi_pipeline.sources.tlc import DownloadError


def _month(context: dg.AssetExecutionContext) -> str:
    # Monthly partition keys are the first day of the month: "2023-01-01" -> "2023-01".
    return context.partition_key[:7]


def _file_metadata(taxi_data: TaxiDataSource, path, rows: int) -> dict:
    return {
        "path": dg.MetadataValue.path(str(path)),
        "size_bytes": path.stat().st_size,
        "rows_in_file": rows,
        "data_source": taxi_data.source,
    }


def _load_metadata(report: LoadReport) -> dict:
    return {"dagster/row_count": report.rows_loaded, **report.as_metadata()}


@contextmanager
def _reported():
    """A download or load error becomes the step's failure description as it is: the sources
    already name the file, the cause and the fix (transient errors were retried there)."""
    try:
        yield
    except (DownloadError, LoadError) as error:
        raise dg.Failure(description=str(error)) from error


def _missing_file(asset: str, path) -> dg.Failure:
    return dg.Failure(
        description=f"{path} does not exist: materialize `{asset}` for this partition first.",
    )


@dg.asset(
    deps=[ZONE_LOOKUP],
    group_name="raw_files",
    kinds={"csv"},
    automation_condition=keep_fresh(),
    description="The TLC's taxi zone lookup (CSV): zone id, borough, zone name, service zone.",
)
def taxi_zones_file(context: dg.AssetExecutionContext, taxi_data: TaxiDataSource):
    with _reported():
        path = taxi_data.fetch_zones(context.log)
    with path.open(encoding="utf-8") as file:
        rows = sum(1 for _ in file) - 1
    return dg.MaterializeResult(metadata=_file_metadata(taxi_data, path, rows))


@dg.asset(
    deps=[taxi_zones_file],
    group_name="ingested",
    kinds={"duckdb"},
    pool=WAREHOUSE_POOL,
    automation_condition=keep_fresh(),
    description="The zone lookup in `raw_taxis.zones`, replaced as a whole on each load.",
)
def taxi_zones(taxi_data: TaxiDataSource, warehouse: Warehouse):
    path = taxi_data.zones_path()
    if not path.exists():
        raise _missing_file("taxi_zones_file", path)
    with _reported(), warehouse.get_connection() as conn:
        report = load_zones(conn, path)
    return dg.MaterializeResult(metadata=_load_metadata(report))


def build_trip_assets(monthly: dg.MonthlyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The monthly trip file and its load, over the configured month range."""

    @dg.asset(
        deps=[TRIP_FILES],
        partitions_def=monthly,
        group_name="raw_files",
        kinds={"parquet"},
        automation_condition=keep_fresh(),
        description="The month's NYC TLC yellow-taxi trip file (parquet), downloaded and verified, "
        "or generated in the same layout when TAXI_DATA_SOURCE=sample.",
    )
    def taxi_trips_file(context: dg.AssetExecutionContext, taxi_data: TaxiDataSource):
        with _reported():
            path = taxi_data.fetch_trips(_month(context), context.log)
        rows = pq.ParquetFile(path).metadata.num_rows
        return dg.MaterializeResult(metadata=_file_metadata(taxi_data, path, rows))

    @dg.asset(
        deps=[taxi_trips_file],
        partitions_def=monthly,
        group_name="ingested",
        kinds={"duckdb"},
        pool=WAREHOUSE_POOL,
        automation_condition=keep_fresh(),
        description="The month's trips in `raw_taxis.trips`, normalised to one schema across TLC "
        "years, with the real files' quirks dropped or fixed (counts in the metadata).",
    )
    def taxi_trips(
        context: dg.AssetExecutionContext, taxi_data: TaxiDataSource, warehouse: Warehouse
    ):
        month = _month(context)
        path = taxi_data.trips_path(month)
        if not path.exists():
            raise _missing_file("taxi_trips_file", path)
        with _reported(), warehouse.get_connection() as conn:
            report = load_trips_month(conn, path, month)
        context.log.info(f"Loaded {report.rows_loaded} trips for {month}; dropped {report.dropped}")
        return dg.MaterializeResult(metadata=_load_metadata(report))

    return [taxi_trips_file, taxi_trips]
