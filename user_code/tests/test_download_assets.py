"""The `nyc-tlc` source through the Dagster assets, against a local stand-in for the TLC site:
a bad month fails its run with a message naming the file and the cause, and the months already
loaded stay exactly as they were."""

import dataclasses
import os

import dagster as dg
import duckdb
import pytest
from tlc_server import Reply, TLCServer

from taxi_pipeline.assets.ingestion import taxi_trips, taxi_trips_file, taxi_zones, taxi_zones_file
from taxi_pipeline.resources import build_resources
from taxi_pipeline.settings import load_settings
from taxi_pipeline.sources import tlc
from taxi_pipeline.sources.sample import write_sample_trips, write_sample_zones

INGEST = [taxi_trips_file, taxi_trips, taxi_zones_file, taxi_zones]


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
    # build_resources exports DUCKDB_DATABASE for dbt: scope that to this test, so later test
    # modules read the session's warehouse path again, not this test's.
    monkeypatch.setenv("DUCKDB_DATABASE", os.environ["DUCKDB_DATABASE"])
    # The resource retries with the production backoff (waits of 0, 2, 4, 8 s): cap every wait
    # at 0 s here, or the HTTP 500 case would sleep 14 s. tests/test_sources.py covers the waits.
    monkeypatch.setattr(tlc, "MAX_BACKOFF_SECONDS", 0)
    settings = dataclasses.replace(
        load_settings(),
        data_source="nyc-tlc",
        tlc_base_url=site.base_url,
        data_dir=tmp_path / "data",
        duckdb_database=tmp_path / "data" / "warehouse" / "taxi.duckdb",
        publish_dir=tmp_path / "data" / "published",
    )
    resources = build_resources(settings)
    with dg.instance_for_test() as instance:
        assert dg.materialize(INGEST[2:], resources=resources, instance=instance).success
        assert dg.materialize(
            INGEST[:2], resources=resources, instance=instance, partition_key="2023-01-01"
        ).success
        yield settings, resources, instance


def _rows(settings):
    with duckdb.connect(str(settings.duckdb_database), read_only=True) as conn:
        return conn.execute(
            "select partition_date, count(*), sum(hash(trip_id, total_amount)) "
            "from raw_taxis.trips group by all order by 1"
        ).fetchall()


@pytest.mark.parametrize(
    ("replies", "cause"),
    [
        ([Reply(404, b"<Error>NoSuchKey</Error>", "application/xml")], "not found"),
        ([Reply(200, b"<!DOCTYPE html><html>maintenance</html>", "text/html")], "HTML"),
        ([Reply(500, b"oops")], "500"),
    ],
)
def test_a_bad_month_fails_clearly_and_keeps_loaded_months(loaded, site, replies, cause):
    settings, resources, instance = loaded
    before = _rows(settings)
    site.serve("/trip-data/yellow_tripdata_2023-02.parquet", *replies)
    result = dg.materialize(
        INGEST[:2],
        resources=resources,
        instance=instance,
        partition_key="2023-02-01",
        raise_on_error=False,
    )
    assert not result.success
    message = result.get_step_failure_events()[0].step_failure_data.error.message
    assert "yellow_tripdata_2023-02.parquet" in message
    assert cause.lower() in message.lower()
    assert _rows(settings) == before
    assert not (settings.raw_dir / "yellow_tripdata_2023-02.parquet").exists()


def test_a_transient_error_is_retried_then_loads(loaded, site):
    settings, resources, instance = loaded
    february = write_sample_trips("2023-02", settings.data_dir / "src", rows=1500).read_bytes()
    site.serve(
        "/trip-data/yellow_tripdata_2023-02.parquet", Reply(503, b"busy"), Reply(body=february)
    )
    result = dg.materialize(
        INGEST[:2], resources=resources, instance=instance, partition_key="2023-02-01"
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
