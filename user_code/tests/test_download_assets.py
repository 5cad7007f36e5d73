"""The `nyc-tlc` source through the Dagster assets, against a local stand-in for the TLC site:
a bad month fails its run with a message naming the file and the cause, and the months already
loaded stay exactly as they were."""

import dagster as dg
import duckdb
import pytest
from conftest import TEST_ENV
from tlc_server import Reply, TLCServer

from taxi_pipeline.definitions import build_defs
from taxi_pipeline.settings import load_settings
from taxi_pipeline.sources import tlc
from taxi_pipeline.sources.sample import write_sample_trips, write_sample_zones


def _ingest(defs: dg.Definitions) -> list[dg.AssetsDefinition]:
    """The trip file and its load (monthly), then the zone file and its load."""
    keys = ("taxi_trips_file", "taxi_trips", "taxi_zones_file", "taxi_zones")
    return [defs.get_assets_def(key) for key in keys]


@pytest.fixture
def site(tmp_path):
    server = TLCServer()
    files = tmp_path / "files"
    files.mkdir()
    zones = write_sample_zones(files).read_bytes()
    january = write_sample_trips("2023-01", files, rows=2000).read_bytes()
    server.serve("/misc/taxi_zone_lookup.csv", Reply(body=zones, content_type="text/csv"))
    server.serve("/trip-data/yellow_tripdata_2023-01.parquet", Reply(body=january))
    yield server
    server.close()


@pytest.fixture
def loaded(site, tmp_path, monkeypatch):
    # The resource retries with the production backoff (waits of 0, 2, 4, 8 s): cap every wait
    # at 0 s here, or the HTTP 500 case would sleep 14 s. tests/test_sources.py covers the waits.
    monkeypatch.setattr(tlc, "MAX_BACKOFF_SECONDS", 0)
    settings = load_settings(
        {
            **TEST_ENV,
            "TAXI_DATA_SOURCE": "nyc-tlc",
            "TAXI_TLC_BASE_URL": site.base_url,
            "TAXI_DATA_DIR": str(tmp_path / "data"),
        }
    )
    defs = build_defs(settings)
    resources = defs.resources
    ingest = _ingest(defs)
    with dg.instance_for_test() as instance:
        assert dg.materialize(ingest[2:], resources=resources, instance=instance).success
        assert dg.materialize(
            ingest[:2], resources=resources, instance=instance, partition_key="2023-01-01"
        ).success
        yield settings, resources, instance, ingest


def _rows(settings):
    with duckdb.connect(str(settings.duckdb_database), read_only=True) as conn:
        return conn.execute(
            "select partition_date, count(*), sum(hash(trip_id, total_amount)) "
            "from raw_taxis.trips group by all order by 1"
        ).fetchall()


def _first_failure(resources, instance, assets, **kwargs) -> dg.DagsterEvent:
    """Materialize `assets`, which must fail; the first step failure."""
    result = dg.materialize(
        assets, resources=resources, instance=instance, raise_on_error=False, **kwargs
    )
    assert not result.success
    return result.get_step_failure_events()[0]


@pytest.mark.parametrize(
    ("replies", "cause"),
    [
        ([Reply(404, b"<Error>NoSuchKey</Error>", "application/xml")], "not found"),
        ([Reply(200, b"<!DOCTYPE html><html>maintenance</html>", "text/html")], "HTML"),
        ([Reply(500, b"oops")], "500"),
    ],
)
def test_a_bad_month_fails_clearly_and_keeps_loaded_months(loaded, site, replies, cause):
    settings, resources, instance, ingest = loaded
    before = _rows(settings)
    site.serve("/trip-data/yellow_tripdata_2023-02.parquet", *replies)
    failure = _first_failure(resources, instance, ingest[:2], partition_key="2023-02-01")
    message = failure.step_failure_data.error.message
    assert "yellow_tripdata_2023-02.parquet" in message
    assert cause.lower() in message.lower()
    assert _rows(settings) == before
    assert not (settings.raw_dir / "yellow_tripdata_2023-02.parquet").exists()


def test_a_transient_error_is_retried_then_loads(loaded, site):
    settings, resources, instance, ingest = loaded
    february = write_sample_trips("2023-02", settings.data_dir / "src", rows=1500).read_bytes()
    site.serve(
        "/trip-data/yellow_tripdata_2023-02.parquet", Reply(503, b"busy"), Reply(body=february)
    )
    result = dg.materialize(
        ingest[:2], resources=resources, instance=instance, partition_key="2023-02-01"
    )
    assert result.success
    assert site.hits["/trip-data/yellow_tripdata_2023-02.parquet"] == 2
    notices = [
        record.user_message
        for record in instance.all_logs(result.run_id)
        if "Download attempt" in record.user_message
    ]
    assert notices == ["Download attempt 1 failed (HTTP 503 Service Unavailable); retrying in 0 s"]
    assert [row[0] for row in _rows(settings)] == ["2023-01-01", "2023-02-01"]


def _zones(settings):
    with duckdb.connect(str(settings.duckdb_database), read_only=True) as conn:
        return conn.execute("select * from raw_taxis.zones order by zone_id").fetchall()


def test_a_bad_zone_lookup_keeps_the_good_one_and_the_loaded_zones(loaded, site):
    """A lookup repeating a LocationID fails the download, not the load: the good local copy is
    never replaced by a file the loader would refuse, and raw_taxis.zones stays as it was."""
    settings, resources, instance, ingest = loaded
    good_file = (settings.raw_dir / "taxi_zone_lookup.csv").read_bytes()
    good_zones = _zones(settings)
    site.serve(
        "/misc/taxi_zone_lookup.csv",
        Reply(
            body=good_file + b'7,"Queens","Astoria again","Boro Zone"\n', content_type="text/csv"
        ),
    )
    failure = _first_failure(resources, instance, ingest[2:])
    assert failure.step_key == "taxi_zones_file"
    message = failure.step_failure_data.error.message
    assert "repeats LocationIDs [7]" in message
    assert "Fix: the published lookup is inconsistent, and the local copy keeps loading" in message
    assert (settings.raw_dir / "taxi_zone_lookup.csv").read_bytes() == good_file
    assert _zones(settings) == good_zones


def test_loading_a_month_whose_file_is_missing_names_the_file_asset(loaded):
    settings, resources, instance, ingest = loaded
    before = _rows(settings)
    failure = _first_failure(resources, instance, [ingest[1]], partition_key="2023-02-01")
    message = failure.step_failure_data.error.message
    assert (
        f"{settings.raw_dir}/yellow_tripdata_2023-02.parquet does not exist: materialize "
        "`taxi_trips_file` for this partition first." in message
    )
    assert _rows(settings) == before
