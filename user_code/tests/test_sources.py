"""Tests of taxi_pipeline.sources: TLC download (against a local HTTP server), loading, sample data.

No network: every download goes to an http.server this module starts on 127.0.0.1 (ephemeral
port) in a thread; responses are scripted per path and the server counts the hits.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tlc_server import Reply, TLCServer, unreachable_base_url

from taxi_pipeline.sources import layout
from taxi_pipeline.sources import tlc as tlc_module
from taxi_pipeline.sources.layout import (
    REQUIRED_TRIP_COLUMNS,
    TRIP_COLUMNS_2023,
    TRIPS_SCHEMA_2023,
    ZONE_COLUMNS,
    ZONES_FILE_NAME,
    trips_file_name,
)
from taxi_pipeline.sources.loading import LoadError, LoadReport, load_trips_month, load_zones
from taxi_pipeline.sources.sample import sample_quirk_counts, write_sample_trips, write_sample_zones
from taxi_pipeline.sources.tlc import (
    DownloadError,
    InvalidFileError,
    download_trips,
    download_zones,
    verify_trips_file,
    verify_zones_file,
)

MONTH = "2023-01"
TRIPS_PATH = f"/trip-data/{trips_file_name(MONTH)}"
ZONES_PATH = f"/misc/{ZONES_FILE_NAME}"
FAST = {"backoff_seconds": 0.001, "timeout": 10}

HTML = b"<!DOCTYPE html><html><head><title>Access denied</title></head><body>nope</body></html>"


@pytest.fixture
def tlc():
    server = TLCServer()
    yield server
    server.close()


# ------------------------------------------------------------------------------------------------
# Files


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sample")
    write_sample_trips(MONTH, folder, 1500)
    write_sample_trips("2023-02", folder, 1500)
    write_sample_zones(folder)
    return folder


@pytest.fixture(scope="module")
def trips_bytes(sample_dir) -> bytes:
    return (sample_dir / trips_file_name(MONTH)).read_bytes()


@pytest.fixture(scope="module")
def zones_bytes(sample_dir) -> bytes:
    return (sample_dir / ZONES_FILE_NAME).read_bytes()


def parquet_bytes(table: pa.Table, tmp_path: Path, name: str = "x.parquet") -> bytes:
    path = tmp_path / name
    pq.write_table(table, path)
    return path.read_bytes()


CLEAN = {
    "VendorID": 2,
    "tpep_pickup_datetime": datetime(2023, 1, 10, 8, 0, 0),
    "tpep_dropoff_datetime": datetime(2023, 1, 10, 8, 20, 0),
    "passenger_count": 1.0,
    "trip_distance": 3.2,
    "RatecodeID": 1.0,
    "store_and_fwd_flag": "N",
    "PULocationID": 161,
    "DOLocationID": 236,
    "payment_type": 1,
    "fare_amount": 17.0,
    "extra": 0.0,
    "mta_tax": 0.5,
    "tip_amount": 4.0,
    "tolls_amount": 0.0,
    "improvement_surcharge": 1.0,
    "total_amount": 25.0,
    "congestion_surcharge": 2.5,
    "airport_fee": 0.0,
}


def trips_table(rows: list[dict], schema: pa.Schema = TRIPS_SCHEMA_2023) -> pa.Table:
    """Rows given as overrides of CLEAN, in the 2023 layout (or `schema`)."""
    full = [{**CLEAN, **row} for row in rows]
    return pa.Table.from_pylist(
        [{name: row.get(name) for name in schema.names} for row in full], schema=schema
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def month_rows(conn, month_date: str) -> list[tuple]:
    return conn.execute(
        "SELECT * FROM raw_taxis.trips WHERE partition_date = ? ORDER BY trip_id", [month_date]
    ).fetchall()


# ------------------------------------------------------------------------------------------------
# Layout


def test_layout_constants():
    assert len(TRIP_COLUMNS_2023) == 19
    assert list(TRIP_COLUMNS_2023)[:3] == [
        "VendorID",
        "tpep_pickup_datetime",
        "tpep_dropoff_datetime",
    ]
    assert TRIP_COLUMNS_2023["RatecodeID"] == pa.float64()
    assert set(TRIP_COLUMNS_2023) >= REQUIRED_TRIP_COLUMNS
    assert "airport_fee" not in REQUIRED_TRIP_COLUMNS
    assert ZONE_COLUMNS == ("LocationID", "Borough", "Zone", "service_zone")
    assert trips_file_name("2023-01") == "yellow_tripdata_2023-01.parquet"
    for bad in ("2023-13", "2023-1", "23-01", "2023/01"):
        with pytest.raises(ValueError):
            trips_file_name(bad)


# ------------------------------------------------------------------------------------------------
# Downloads


def test_download_trips_and_zones(tlc, tmp_path, trips_bytes, zones_bytes):
    tlc.serve(TRIPS_PATH, Reply(body=trips_bytes))
    tlc.serve(ZONES_PATH, Reply(body=zones_bytes, content_type="text/csv"))
    dest = tmp_path / "raw"

    trips = download_trips(MONTH, dest, tlc.base_url + "/", **FAST)
    zones = download_zones(dest, tlc.base_url, **FAST)

    assert trips == dest / "yellow_tripdata_2023-01.parquet"
    assert trips.read_bytes() == trips_bytes
    assert zones == dest / "taxi_zone_lookup.csv"
    assert zones.read_bytes() == zones_bytes
    assert tlc.hits[TRIPS_PATH] == 1 and tlc.hits[ZONES_PATH] == 1
    assert sorted(p.name for p in dest.iterdir()) == [zones.name, trips.name]  # no temp files


@pytest.mark.parametrize(
    "path, replies, expected_hits",
    [
        (TRIPS_PATH, [Reply(500), Reply(503), Reply()], 3),
        (TRIPS_PATH, [Reply(429, headers={"Retry-After": "0"}), Reply()], 2),
        (ZONES_PATH, [Reply(502), Reply()], 2),
        (TRIPS_PATH, [Reply(drop_after=1000), Reply()], 2),  # connection broke mid-body
    ],
    ids=["500-503-ok", "429-ok", "zones-502-ok", "dropped-connection-ok"],
)
def test_transient_failures_are_retried(
    tlc, tmp_path, trips_bytes, zones_bytes, path, replies, expected_hits
):
    body = trips_bytes if path == TRIPS_PATH else zones_bytes
    tlc.serve(
        path,
        *[
            Reply(
                r.status,
                body if r.status == 200 else b"oops",
                r.content_type,
                r.drop_after,
                r.headers,
            )
            for r in replies
        ],
    )
    retries = []
    if path == TRIPS_PATH:
        got = download_trips(
            MONTH, tmp_path, tlc.base_url, **FAST, on_retry=lambda *a: retries.append(a)
        )
    else:
        got = download_zones(tmp_path, tlc.base_url, **FAST, on_retry=lambda *a: retries.append(a))
    assert got.read_bytes() == body
    assert tlc.hits[path] == expected_hits
    assert len(retries) == expected_hits - 1
    assert [p.name for p in tmp_path.iterdir()] == [got.name]


@pytest.fixture
def good_state(tlc, tmp_path, trips_bytes, zones_bytes, sample_dir):
    """A good trips file + zone lookup downloaded, and two months + zones loaded in DuckDB;
    `check()` asserts all of it is untouched (and no temp files were left)."""
    raw = tmp_path / "raw"
    tlc.serve(TRIPS_PATH, Reply(body=trips_bytes))
    tlc.serve(ZONES_PATH, Reply(body=zones_bytes, content_type="text/csv"))
    trips = download_trips(MONTH, raw, tlc.base_url, **FAST)
    zones = download_zones(raw, tlc.base_url, **FAST)
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    load_zones(conn, zones)
    load_trips_month(conn, trips, MONTH)
    load_trips_month(conn, sample_dir / trips_file_name("2023-02"), "2023-02")
    before = {
        "files": {p.name: sha256(p) for p in raw.iterdir()},
        "jan": month_rows(conn, "2023-01-01"),
        "feb": month_rows(conn, "2023-02-01"),
        "zones": conn.execute("SELECT * FROM raw_taxis.zones ORDER BY zone_id").fetchall(),
    }
    assert len(before["jan"]) > 1000 and len(before["zones"]) == 265

    def check():
        assert {p.name: sha256(p) for p in raw.iterdir()} == before["files"]
        assert month_rows(conn, "2023-01-01") == before["jan"]
        assert month_rows(conn, "2023-02-01") == before["feb"]
        assert (
            conn.execute("SELECT * FROM raw_taxis.zones ORDER BY zone_id").fetchall()
            == before["zones"]
        )

    yield raw, conn, check
    conn.close()


def _missing_columns_parquet(tmp_path: Path) -> bytes:
    table = trips_table([{}] * 5).drop_columns(["PULocationID", "fare_amount"])
    return parquet_bytes(table, tmp_path)


def _zones_variant(tmp_path: Path, edit) -> bytes:
    """The sample lookup's bytes after `edit(lines)` (a list of its lines, header first)."""
    lines = write_sample_zones(tmp_path / "variant").read_text().splitlines()
    return ("\n".join(edit(lines)) + "\n").encode()


def _typed_parquet(tmp_path: Path, column: str, values: list, typ: pa.DataType) -> bytes:
    table = trips_table([{}] * len(values))
    index = table.schema.get_field_index(column)
    return parquet_bytes(table.set_column(index, column, pa.array(values, typ)), tmp_path)


BAD_CASES = {
    # id: (path, reply factory(trips_bytes, tmp_path), exception type, message fragments, hits)
    "trips-404": (
        TRIPS_PATH,
        lambda b, t: Reply(404, b"<Error>NoSuchKey</Error>", "application/xml"),
        DownloadError,
        ["not found", "404", TRIPS_PATH, "TAXI_TLC_BASE_URL"],
        1,
    ),
    "trips-403": (
        TRIPS_PATH,
        lambda b, t: Reply(403, b"AccessDenied"),
        DownloadError,
        ["not found", "403", "not published yet"],
        1,
    ),
    "zones-404": (ZONES_PATH, lambda b, t: Reply(404), DownloadError, ["not found", ZONES_PATH], 1),
    "trips-500-forever": (
        TRIPS_PATH,
        lambda b, t: Reply(500, b"boom"),
        DownloadError,
        ["after 3 attempts", "HTTP 500", TRIPS_PATH],
        3,
    ),
    "trips-cut-short-forever": (
        TRIPS_PATH,
        lambda b, t: Reply(200, b, drop_after=1000),
        DownloadError,
        ["after 3 attempts", "cut short", "IncompleteRead", TRIPS_PATH],
        3,
    ),
    "zones-html-page": (
        ZONES_PATH,
        lambda b, t: Reply(200, HTML, "text/html; charset=utf-8"),
        InvalidFileError,
        ["HTML", ZONES_PATH, "TAXI_TLC_BASE_URL"],
        1,
    ),
    "zones-html-as-csv": (
        ZONES_PATH,
        lambda b, t: Reply(200, HTML, "text/csv"),
        InvalidFileError,
        ["HTML", ZONES_PATH, ZONES_FILE_NAME],
        1,
    ),
    "zones-wrong-header": (
        ZONES_PATH,
        lambda b, t: Reply(200, b"id,name\n1,x\n", "text/csv"),
        InvalidFileError,
        ["header", ZONES_PATH],
        1,
    ),
    "trips-truncated": (
        TRIPS_PATH,
        lambda b, t: Reply(200, b[: len(b) // 2]),
        InvalidFileError,
        ["truncated", TRIPS_PATH, "yellow_tripdata_2023-01.parquet"],
        1,
    ),
    "trips-missing-columns": (
        TRIPS_PATH,
        lambda b, t: Reply(200, _missing_columns_parquet(t)),
        InvalidFileError,
        ["missing", "PULocationID", "fare_amount", TRIPS_PATH],
        1,
    ),
    "trips-html-page": (
        TRIPS_PATH,
        lambda b, t: Reply(200, HTML, "text/html"),
        InvalidFileError,
        ["HTML", TRIPS_PATH],
        1,
    ),
    "trips-not-parquet": (
        TRIPS_PATH,
        lambda b, t: Reply(200, b"VendorID,tpep\n1,2\n", "text/csv"),
        InvalidFileError,
        ["not a parquet file", TRIPS_PATH],
        1,
    ),
    "trips-401": (
        TRIPS_PATH,
        lambda b, t: Reply(401, b"who are you"),
        DownloadError,
        ["HTTP 401", TRIPS_PATH],
        1,
    ),
    "trips-empty-file": (
        TRIPS_PATH,
        lambda b, t: Reply(200, b""),
        InvalidFileError,
        ["empty (0 bytes)", TRIPS_PATH],
        1,
    ),
    "trips-no-rows": (
        TRIPS_PATH,
        lambda b, t: Reply(200, parquet_bytes(trips_table([]), t)),
        InvalidFileError,
        ["holds no trips (0 rows)", TRIPS_PATH],
        1,
    ),
    "trips-pickup-as-text": (
        TRIPS_PATH,
        lambda b, t: Reply(
            200, _typed_parquet(t, "tpep_pickup_datetime", ["2023-01-10 08:00:00"], pa.string())
        ),
        InvalidFileError,
        ["unexpected types: tpep_pickup_datetime is string", TRIPS_PATH],
        1,
    ),
    "trips-fare-as-text": (
        TRIPS_PATH,
        lambda b, t: Reply(200, _typed_parquet(t, "fare_amount", ["17.00"], pa.string())),
        InvalidFileError,
        ["unexpected types: fare_amount is string", TRIPS_PATH],
        1,
    ),
    "zones-repeated-location-id": (
        ZONES_PATH,
        lambda b, t: Reply(
            200,
            _zones_variant(t, lambda lines: [*lines, '7,"Queens","Astoria again","Boro Zone"']),
            "text/csv",
        ),
        InvalidFileError,
        ["repeats LocationIDs [7]", ZONES_PATH, "unchanged"],
        1,
    ),
    "zones-too-few": (
        ZONES_PATH,
        lambda b, t: Reply(200, _zones_variant(t, lambda lines: lines[:4]), "text/csv"),
        InvalidFileError,
        ["holds 3 zones, expected 250..300", ZONES_PATH],
        1,
    ),
    "zones-location-id-zero": (
        ZONES_PATH,
        lambda b, t: Reply(
            200,
            _zones_variant(t, lambda lines: [*lines, '0,"Queens","Nowhere","Boro Zone"']),
            "text/csv",
        ),
        InvalidFileError,
        ["LocationIDs below 1: [0]", ZONES_PATH],
        1,
    ),
    "zones-missing-column": (
        ZONES_PATH,
        lambda b, t: Reply(
            200,
            _zones_variant(t, lambda lines: [line.rsplit(",", 1)[0] for line in lines]),
            "text/csv",
        ),
        InvalidFileError,
        ["the CSV header is ['LocationID', 'Borough', 'Zone']", ZONES_PATH],
        1,
    ),
    "zones-location-id-not-a-number": (
        ZONES_PATH,
        lambda b, t: Reply(
            200,
            _zones_variant(t, lambda lines: [*lines, 'x1,"Queens","Astoria","Boro Zone"']),
            "text/csv",
        ),
        InvalidFileError,
        ["LocationID 'x1' is not a whole number", ZONES_PATH],
        1,
    ),
    "zones-empty-file": (
        ZONES_PATH,
        lambda b, t: Reply(200, b"", "text/csv"),
        InvalidFileError,
        ["empty (0 bytes)", ZONES_PATH],
        1,
    ),
    "zones-not-utf8": (
        ZONES_PATH,
        lambda b, t: Reply(
            200,
            _zones_variant(t, lambda lines: lines).replace(b"Astoria", b"Ast\xf6ria"),
            "text/csv",
        ),
        InvalidFileError,
        ["not UTF-8", ZONES_PATH],
        1,
    ),
}

# The fix each cause gets (the text after "Fix:"): its own, not one hint for every failure.
FORMAT_CHANGED = "the TLC changed the file format: the loader's layout in taxi_pipeline/sources/"
RETRY = "the transfer was damaged or cut short: materialize it again"
SERVER = "the server or network is failing or slow: retry later"
INCONSISTENT = "the published lookup is inconsistent, and the local copy keeps loading: retry"
FIXES = {
    "trips-404": "the month is not published yet",
    "trips-403": "the month is not published yet",
    "zones-404": "the zone lookup is always published, so the base URL is wrong",
    "trips-500-forever": SERVER,
    "trips-cut-short-forever": SERVER,
    "zones-html-page": "a proxy, captive portal or web site answered",
    "zones-html-as-csv": "a proxy, captive portal or web site answered",
    "trips-html-page": "a proxy, captive portal or web site answered",
    "zones-wrong-header": FORMAT_CHANGED,
    "trips-truncated": RETRY,
    "trips-missing-columns": FORMAT_CHANGED + "layout.py must learn it (REQUIRED_TRIP_COLUMNS",
    "trips-not-parquet": "the server sent another kind of file",
    "trips-401": "the TLC file store answers 200 or 404",
    "trips-empty-file": RETRY,
    "trips-no-rows": "the TLC published the month without trips",
    "trips-pickup-as-text": FORMAT_CHANGED
    + "layout.py must learn it (TIMESTAMP_/STRING_/NUMERIC_TRIP_COLUMNS must accept "
    "tpep_pickup_datetime as string",
    "trips-fare-as-text": FORMAT_CHANGED,
    "zones-repeated-location-id": INCONSISTENT,
    "zones-too-few": INCONSISTENT,
    "zones-location-id-zero": INCONSISTENT,
    "zones-missing-column": FORMAT_CHANGED + "layout.py must learn it (ZONE_COLUMNS must become",
    "zones-location-id-not-a-number": FORMAT_CHANGED,
    "zones-empty-file": RETRY,
    "zones-not-utf8": FORMAT_CHANGED,
}


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_failed_download_changes_nothing(case, tlc, good_state, trips_bytes, tmp_path):
    raw, _conn, check = good_state
    path, make_reply, exc_type, fragments, hits = BAD_CASES[case]
    tlc.serve(path, make_reply(trips_bytes, tmp_path))

    with pytest.raises(exc_type) as info:
        if path == TRIPS_PATH:
            download_trips(MONTH, raw, tlc.base_url, retries=2, **FAST)
        else:
            download_zones(raw, tlc.base_url, retries=2, **FAST)

    message = str(info.value)
    for fragment in fragments:
        assert fragment.lower() in message.lower(), (fragment, message)
    assert info.value.url == tlc.base_url + path
    assert tlc.hits[path] == hits  # 404/403 and bad content are never retried
    fix = message.split("Fix: ", 1)[1]
    assert fix.startswith(FIXES[case]), (FIXES[case], fix)
    # Only causes the base URL can explain point at it: a retry or a new layout is the fix else.
    if FIXES[case] in (FORMAT_CHANGED, RETRY) or FIXES[case].startswith(FORMAT_CHANGED):
        assert "TAXI_TLC_BASE_URL" not in message, message
    check()


def test_every_bad_case_names_its_fix():
    assert set(FIXES) == set(BAD_CASES)


def test_what_the_download_accepts_the_loader_loads(good_state, tlc, tmp_path):
    """What the download accepts, the loader loads: the share of pickups in the month is counted
    the same way by both (pickups in the month, whatever the dropoff)."""
    raw, conn, _check = good_state
    rows = [{"tpep_dropoff_datetime": None}] * 4 + [{}] * 2
    tlc.serve(TRIPS_PATH, Reply(body=parquet_bytes(trips_table(rows), tmp_path)))
    path = download_trips(MONTH, raw, tlc.base_url, **FAST)
    report = load_trips_month(conn, path, MONTH)
    assert (report.rows_loaded, report.dropped["missing_timestamp"]) == (2, 4)


def test_a_file_too_big_for_trip_ids_is_refused_by_the_download(
    good_state, tlc, trips_bytes, monkeypatch
):
    raw, _conn, check = good_state
    monkeypatch.setattr(tlc_module, "TRIP_ID_ORDINAL_DIGITS", 3)  # 999 trips at most
    tlc.serve(TRIPS_PATH, Reply(body=trips_bytes))
    with pytest.raises(InvalidFileError, match="holds 1500 rows: trip ids allow at most 999"):
        download_trips(MONTH, raw, tlc.base_url, **FAST)
    check()


def test_raw_files_get_the_umask_s_mode(tlc, tmp_path, trips_bytes, zones_bytes):
    """Not tempfile's 0600: run containers and readers under another user open these files."""
    tlc.serve(TRIPS_PATH, Reply(body=trips_bytes))
    tlc.serve(ZONES_PATH, Reply(body=zones_bytes, content_type="text/csv"))
    old = os.umask(0o022)
    try:
        written = [
            download_trips(MONTH, tmp_path / "tlc", tlc.base_url, **FAST),
            download_zones(tmp_path / "tlc", tlc.base_url, **FAST),
            write_sample_trips(MONTH, tmp_path / "sample", 10),
            write_sample_zones(tmp_path / "sample"),
        ]
        os.umask(0o027)
        written.append(download_zones(tmp_path / "group", tlc.base_url, **FAST))
    finally:
        os.umask(old)
    modes = [stat.S_IMODE(path.stat().st_mode) for path in written]
    assert modes == [0o644] * 4 + [0o640]


def test_a_zone_lookup_with_a_byte_order_mark_loads(tmp_path):
    path = write_sample_zones(tmp_path)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert len(verify_zones_file(path).rows) == 265
    assert load_zones(duckdb.connect(), path).rows_loaded == 265


def test_a_base_url_without_scheme_names_the_setting(good_state):
    raw, _conn, check = good_state
    with pytest.raises(DownloadError, match="cannot be requested") as info:
        download_zones(raw, "d37ci6vzurychx.cloudfront.net", **FAST)
    assert str(info.value).endswith(
        "Fix: TAXI_TLC_BASE_URL must be an http(s) URL such as https://d37ci6vzurychx.cloudfront.net."
    )
    check()


def test_unreachable_server_is_retried_then_reported(good_state):
    raw, _conn, check = good_state
    base_url = unreachable_base_url()
    retries = []
    with pytest.raises(DownloadError, match="after 3 attempts: connection failed") as info:
        download_trips(
            MONTH,
            raw,
            base_url,
            retries=2,
            **FAST,
            on_retry=lambda *a: retries.append(a),
        )
    assert info.value.attempts == 3 and len(retries) == 2
    assert f"{base_url}/trip-data/yellow_tripdata_2023-01.parquet" in str(info.value)
    check()


def test_a_silent_server_times_out_and_is_retried_then_reported(tlc, good_state):
    raw, _conn, check = good_state
    tlc.serve(TRIPS_PATH, Reply(delay=1.0))
    retries = []
    with pytest.raises(DownloadError, match="after 2 attempts: timed out") as info:
        download_trips(
            MONTH,
            raw,
            tlc.base_url,
            retries=1,
            backoff_seconds=0.001,
            timeout=0.2,
            on_retry=lambda *a: retries.append(a),
        )
    assert "Read timed out" in str(info.value)
    assert tlc.hits[TRIPS_PATH] == 2
    assert [(attempt, cause.split(" (")[0]) for attempt, cause, _ in retries] == [(1, "timed out")]
    check()


def test_retry_after_is_the_wait(tlc, tmp_path, trips_bytes):
    tlc.serve(
        TRIPS_PATH, Reply(503, b"busy", headers={"Retry-After": "1"}), Reply(body=trips_bytes)
    )
    retries = []
    started = time.monotonic()
    download_trips(MONTH, tmp_path, tlc.base_url, **FAST, on_retry=lambda *a: retries.append(a))
    assert retries == [(1, "HTTP 503 Service Unavailable", 1)]
    assert time.monotonic() - started >= 1


def test_wrong_month_file_is_rejected(tlc, good_state, sample_dir):
    raw, _conn, check = good_state
    february = (sample_dir / trips_file_name("2023-02")).read_bytes()
    tlc.serve(TRIPS_PATH, Reply(body=february))
    with pytest.raises(InvalidFileError, match="not the 2023-01 trips file"):
        download_trips(MONTH, raw, tlc.base_url, **FAST)
    check()


def test_loading_another_month_s_file_is_refused_and_loads_nothing(tmp_path, sample_dir):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_trips_month(conn, sample_dir / trips_file_name(MONTH), MONTH)
    before = month_rows(conn, "2023-01-01")
    february_as_january = tmp_path / trips_file_name(MONTH)
    february_as_january.write_bytes((sample_dir / trips_file_name("2023-02")).read_bytes())
    with pytest.raises(LoadError, match="not the 2023-01 trips file: only 0 of its"):
        load_trips_month(conn, february_as_january, MONTH)
    assert month_rows(conn, "2023-01-01") == before


def test_verify_functions_name_file_and_cause(tmp_path, sample_dir):
    verify_trips_file(sample_dir / trips_file_name(MONTH), MONTH)
    verify_zones_file(sample_dir / ZONES_FILE_NAME)
    bad = tmp_path / trips_file_name(MONTH)
    bad.write_bytes((sample_dir / trips_file_name(MONTH)).read_bytes()[:-100])
    with pytest.raises(InvalidFileError, match=r"yellow_tripdata_2023-01\.parquet.*truncated"):
        verify_trips_file(bad, MONTH)
    with pytest.raises(InvalidFileError, match="does not exist"):
        verify_zones_file(tmp_path / "nothing.csv")


# ------------------------------------------------------------------------------------------------
# Loading


def _quirk_rows() -> list[dict]:
    t = datetime(2023, 1, 15, 12, 0, 0)
    later = t + timedelta(minutes=12)
    return [
        {},  # 1 clean
        {"RatecodeID": 99.0},  # 2 fixed: 99 -> NULL
        {
            "passenger_count": None,
            "RatecodeID": None,
            "payment_type": 0,
            "congestion_surcharge": None,
            "airport_fee": None,
            "store_and_fwd_flag": None,
        },  # 3 kept
        {
            "tpep_pickup_datetime": datetime(2022, 12, 31, 23, 59, 30),
            "tpep_dropoff_datetime": datetime(2023, 1, 1, 0, 10),
        },  # 4 outside month
        {
            "tpep_pickup_datetime": datetime(2002, 1, 5, 10, 0),
            "tpep_dropoff_datetime": datetime(2002, 1, 5, 10, 30),
        },  # 5 outside month
        {
            "tpep_pickup_datetime": datetime(2023, 2, 1, 0, 0, 0),
            "tpep_dropoff_datetime": datetime(2023, 2, 1, 0, 9),
        },  # 6 outside (end exclusive)
        {
            "tpep_pickup_datetime": datetime(2023, 1, 1, 0, 0, 0),
            "tpep_dropoff_datetime": datetime(2023, 1, 1, 0, 9),
        },  # 7 kept (start inclusive)
        {"tpep_pickup_datetime": later, "tpep_dropoff_datetime": t},  # 8 dropoff before pickup
        {"fare_amount": -17.0, "total_amount": -25.0, "payment_type": 4},  # 9 negative amount
        {"total_amount": -3.0},  # 10 negative amount
        {"PULocationID": None},  # 11 missing zone id
        {"DOLocationID": 266},  # 12 zone out of range
        {"RatecodeID": 7.0},  # 13 fixed: invalid rate
        {"tpep_pickup_datetime": t, "tpep_dropoff_datetime": t + timedelta(hours=30)},  # 14 >24h
        {"tpep_pickup_datetime": datetime(2022, 12, 1), "total_amount": -5.0},  # 15 first rule wins
        {"trip_distance": -1.5},  # 16 negative distance
        {"trip_distance": 0.0},  # 17 kept: zero distance
        {"tpep_pickup_datetime": t, "tpep_dropoff_datetime": t},  # 18 kept: zero duration
        {"PULocationID": 264, "DOLocationID": 265},  # 19 kept: unknown zones
        {"passenger_count": 0.0},  # 20 kept: zero passengers
        {"trip_distance": 1200.0},  # 21 implausible distance
        {"tpep_dropoff_datetime": None},  # 22 missing timestamp
        {"passenger_count": 2.5, "VendorID": 6},  # 23 fixed: passengers
    ]


def test_quirk_counts_are_exact(tmp_path):
    path = tmp_path / trips_file_name(MONTH)
    pq.write_table(trips_table(_quirk_rows()), path)
    conn = duckdb.connect()

    report = load_trips_month(conn, path, MONTH)

    assert report.rows_in_file == 23
    assert report.dropped == {
        "missing_timestamp": 1,
        "pickup_outside_month": 4,
        "dropoff_before_pickup": 1,
        "duration_over_24h": 1,
        "missing_zone_id": 1,
        "zone_id_out_of_range": 1,
        "negative_amount": 2,
        "negative_trip_distance": 1,
        "implausible_trip_distance": 1,
    }
    assert report.rows_loaded == 23 - 13 == 10
    assert report.fixed == {
        "rate_code_99_to_null": 1,
        "rate_code_invalid_to_null": 1,
        "passenger_count_invalid_to_null": 1,
    }
    assert report.kept["null_passenger_count"] == 1
    assert report.kept["null_rate_code_id"] == 1
    assert report.kept["zero_trip_distance"] == 1
    assert report.kept["zero_duration"] == 1
    assert report.kept["zero_passenger_count"] == 1
    assert report.kept["unknown_zone_264_265"] == 1
    assert report.kept["payment_type_unknown"] == 1
    assert report.kept["vendor_other"] == 1
    assert report.kept["null_airport_fee"] == 1

    rows = conn.execute(
        "SELECT trip_id, rate_code_id, passenger_count FROM raw_taxis.trips ORDER BY trip_id"
    ).fetchall()
    # trip_id = yyyymm * 10**8 + the row's ordinal in the file
    assert [r[0] for r in rows] == [
        20230100000000 + n for n in (1, 2, 3, 7, 13, 17, 18, 19, 20, 23)
    ]
    by_id = {r[0]: r[1:] for r in rows}
    assert by_id[20230100000001] == (1, 1)
    assert by_id[20230100000002] == (None, 1)  # rate code 99 -> NULL
    assert by_id[20230100000003] == (None, None)  # kept NULLs
    assert by_id[20230100000013] == (None, 1)  # rate code 7 -> NULL
    assert by_id[20230100000023] == (1, None)  # 2.5 passengers -> NULL

    meta = report.as_metadata()
    assert meta["rows_loaded"] == 10 and meta["rows_dropped"] == 13
    assert meta["dropped_pickup_outside_month"] == 4 and meta["fixed_rate_code_99_to_null"] == 1
    assert all(isinstance(v, (int, str)) for v in meta.values())


def test_loading_same_month_three_times_is_idempotent(tmp_path, sample_dir):
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_trips_month(conn, sample_dir / trips_file_name("2023-02"), "2023-02")
    february = month_rows(conn, "2023-02-01")
    reports, snapshots = [], []
    for _ in range(3):
        reports.append(load_trips_month(conn, sample_dir / trips_file_name(MONTH), MONTH))
        snapshots.append(month_rows(conn, "2023-01-01"))
    assert snapshots[0] == snapshots[1] == snapshots[2]
    assert len(snapshots[0]) == reports[0].rows_loaded
    assert reports[0] == reports[1] == reports[2]
    assert month_rows(conn, "2023-02-01") == february
    total = conn.execute("SELECT count(*), count(DISTINCT trip_id) FROM raw_taxis.trips").fetchone()
    assert total[0] == total[1] == len(february) + reports[0].rows_loaded


def test_text_trip_ids_of_an_older_warehouse_are_converted_on_load(tmp_path, sample_dir):
    # Warehouses written before trip ids were numbers hold 'YYYY-MM-01/0000123': the next load
    # converts them in place, to the same ids the loader now writes.
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    load_trips_month(conn, sample_dir / trips_file_name("2023-02"), "2023-02")
    numeric = conn.execute("SELECT trip_id FROM raw_taxis.trips ORDER BY trip_id").fetchall()
    conn.execute(
        "ALTER TABLE raw_taxis.trips ALTER trip_id SET DATA TYPE VARCHAR USING "
        "partition_date || '/' || lpad(CAST(trip_id % 100000000 AS VARCHAR), 7, '0')"
    )
    assert (
        conn.execute("SELECT min(trip_id) FROM raw_taxis.trips")
        .fetchone()[0]
        .startswith("2023-02-01/00")
    )

    load_trips_month(conn, sample_dir / trips_file_name(MONTH), MONTH)

    assert (
        conn.execute(
            "SELECT trip_id FROM raw_taxis.trips WHERE partition_date = '2023-02-01' "
            "ORDER BY trip_id"
        ).fetchall()
        == numeric
    )
    types = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw_taxis' AND table_name = 'trips'"
        ).fetchall()
    )
    assert types["trip_id"] == "BIGINT"


TRIPS_SCHEMA_2024 = pa.schema(
    [
        ("VendorID", pa.int32()),
        ("tpep_pickup_datetime", pa.timestamp("us")),
        ("tpep_dropoff_datetime", pa.timestamp("us")),
        ("passenger_count", pa.int64()),
        ("trip_distance", pa.float64()),
        ("RatecodeID", pa.int64()),
        ("store_and_fwd_flag", pa.large_string()),
        ("PULocationID", pa.int32()),
        ("DOLocationID", pa.int32()),
        ("payment_type", pa.int64()),
        ("fare_amount", pa.float64()),
        ("extra", pa.float64()),
        ("mta_tax", pa.float64()),
        ("tip_amount", pa.float64()),
        ("tolls_amount", pa.float64()),
        ("improvement_surcharge", pa.float64()),
        ("total_amount", pa.float64()),
        ("congestion_surcharge", pa.float64()),
        ("Airport_fee", pa.float64()),
        ("cbd_congestion_fee", pa.float64()),  # 2025 addition: ignored
    ]
)


def test_2024_types_and_airport_fee_spelling(tmp_path):
    rows = [
        {"passenger_count": 2, "RatecodeID": 1, "Airport_fee": 1.75, "PULocationID": 132},
        {"passenger_count": None, "RatecodeID": 99, "Airport_fee": 0.0},
        {"passenger_count": 1, "RatecodeID": 2, "Airport_fee": None, "cbd_congestion_fee": 0.75},
    ]
    rows = [
        {
            k: (int(v) if k in ("passenger_count", "RatecodeID") and v is not None else v)
            for k, v in {**CLEAN, "passenger_count": 1, "RatecodeID": 1, **r}.items()
        }
        for r in rows
    ]
    path = tmp_path / "yellow_tripdata_2024-03.parquet"
    table = trips_table(
        [
            {
                **r,
                "tpep_pickup_datetime": datetime(2024, 3, 5, 9),
                "tpep_dropoff_datetime": datetime(2024, 3, 5, 9, 30),
            }
            for r in rows
        ],
        schema=TRIPS_SCHEMA_2024,
    )
    pq.write_table(table, path)
    conn = duckdb.connect()

    report = load_trips_month(conn, path, "2024-03")

    assert report.rows_loaded == 3 and report.fixed["rate_code_99_to_null"] == 1
    got = conn.execute(
        "SELECT passenger_count, rate_code_id, pickup_zone_id, airport_fee FROM raw_taxis.trips "
        "ORDER BY trip_id"
    ).fetchall()
    assert got == [(2, 1, 132, 1.75), (None, None, 161, 0.0), (1, 2, 161, None)]
    types = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'raw_taxis' AND table_name = 'trips'"
        ).fetchall()
    )
    assert types == {name: typ for name, typ in layout.RAW_TRIPS_COLUMNS}


def test_missing_optional_columns_become_null(tmp_path):
    table = trips_table([{}, {}]).drop_columns(["congestion_surcharge", "airport_fee"])
    path = tmp_path / "old.parquet"
    pq.write_table(table, path)
    conn = duckdb.connect()
    assert load_trips_month(conn, path, MONTH).rows_loaded == 2
    assert (
        conn.execute(
            "SELECT count(*) FROM raw_taxis.trips "
            "WHERE congestion_surcharge IS NULL AND airport_fee IS NULL"
        ).fetchone()[0]
        == 2
    )


class FailingConnection:
    """Delegates to a DuckDB connection but fails statements starting with `prefix`."""

    def __init__(self, conn, prefix: str):
        self._conn, self._prefix = conn, prefix

    def execute(self, sql, *args, **kwargs):
        if sql.lstrip().upper().startswith(self._prefix):
            raise duckdb.IOException("simulated failure (disk full)")
        return self._conn.execute(sql, *args, **kwargs)

    def executemany(self, sql, *args, **kwargs):
        if sql.lstrip().upper().startswith(self._prefix):
            raise duckdb.IOException("simulated failure (disk full)")
        return self._conn.executemany(sql, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def test_failed_load_rolls_back_and_keeps_earlier_months(good_state, sample_dir, tmp_path):
    raw, conn, check = good_state
    # Fails after the DELETE of the month, inside the transaction: the DELETE must be undone.
    with pytest.raises(LoadError, match="rolled back"):
        load_trips_month(FailingConnection(conn, "INSERT"), raw / trips_file_name(MONTH), MONTH)
    check()
    with pytest.raises(LoadError, match="rolled back"):
        load_zones(FailingConnection(conn, "INSERT"), raw / ZONES_FILE_NAME)
    check()
    # A bad file is refused before anything is touched.
    truncated = tmp_path / "trunc.parquet"
    truncated.write_bytes((raw / trips_file_name(MONTH)).read_bytes()[:5000])
    with pytest.raises(InvalidFileError, match="truncated"):
        load_trips_month(conn, truncated, MONTH)
    check()
    duplicated = tmp_path / ZONES_FILE_NAME
    text = (raw / ZONES_FILE_NAME).read_text()
    duplicated.write_text(text + '7,"Queens","Astoria again","Boro Zone"\n')
    with pytest.raises(LoadError, match=r"repeats LocationIDs \[7\]"):
        load_zones(conn, duplicated)
    check()
    # And a good load still works on the same connection afterwards (no dangling transaction).
    load_trips_month(conn, raw / trips_file_name(MONTH), MONTH)
    check()


def test_load_zones(tmp_path):
    path = write_sample_zones(tmp_path)
    conn = duckdb.connect()
    report = load_zones(conn, path)
    assert isinstance(report, LoadReport) and report.rows_loaded == 265
    load_zones(conn, path)  # replaces, does not append
    assert conn.execute(
        "SELECT count(*), count(DISTINCT zone_id) FROM raw_taxis.zones"
    ).fetchone() == (265, 265)
    small = tmp_path / "small" / ZONES_FILE_NAME
    small.parent.mkdir()
    small.write_text(path.read_text().split("\n4,")[0] + "\n")
    with pytest.raises(LoadError, match="holds 3 zones"):
        load_zones(conn, small)
    assert conn.execute("SELECT count(*) FROM raw_taxis.zones").fetchone()[0] == 265


# ------------------------------------------------------------------------------------------------
# Sample data


def test_sample_is_deterministic(tmp_path):
    a = write_sample_trips(MONTH, tmp_path / "a", 3000)
    b = write_sample_trips(MONTH, tmp_path / "b", 3000)
    c = write_sample_trips(MONTH, tmp_path / "c", 3000, seed=7)
    d = write_sample_trips("2023-02", tmp_path / "d", 3000)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert pq.read_table(a).column("PULocationID") != pq.read_table(d).column("PULocationID")
    assert (
        write_sample_zones(tmp_path / "a").read_bytes()
        == write_sample_zones(tmp_path / "b").read_bytes()
    )


def test_sample_layout(tmp_path):
    path = write_sample_trips(MONTH, tmp_path, 2000)
    pfile = pq.ParquetFile(path)
    schema = pfile.schema_arrow
    assert schema.names == list(TRIP_COLUMNS_2023)
    assert [f.type for f in schema] == list(TRIP_COLUMNS_2023.values())
    assert pfile.metadata.num_rows == 2000
    verify_trips_file(path, MONTH)

    zones = write_sample_zones(tmp_path)
    lines = zones.read_text().splitlines()
    assert lines[0] == '"LocationID","Borough","Zone","service_zone"'
    assert len(lines) == 266
    assert lines[1] == '1,"EWR","Newark Airport","EWR"'
    assert '132,"Queens","JFK Airport","Airports"' in lines
    assert '138,"Queens","LaGuardia Airport","Airports"' in lines
    assert lines[-2:] == ['264,"Unknown","N/A","N/A"', '265,"N/A","Outside of NYC","N/A"']
    boroughs = {line.split(",")[1].strip('"') for line in lines[1:]}
    assert boroughs == {
        "Bronx",
        "Brooklyn",
        "EWR",
        "Manhattan",
        "Queens",
        "Staten Island",
        "Unknown",
        "N/A",
    }


@pytest.fixture(scope="module")
def sample_warehouse(tmp_path_factory):
    folder = tmp_path_factory.mktemp("realism")
    conn = duckdb.connect()
    load_zones(conn, write_sample_zones(folder))
    report = load_trips_month(conn, write_sample_trips(MONTH, folder, 20000), MONTH)
    yield conn, report
    conn.close()


def test_sample_quirks_match_the_plan(sample_warehouse):
    _conn, report = sample_warehouse
    plan = sample_quirk_counts(20000)
    assert report.rows_in_file == 20000
    for key, value in {**report.dropped, **report.fixed}.items():
        assert value == plan.get(key, 0), key
    assert report.kept["null_passenger_count"] == plan["null_passenger_count"]
    assert report.kept["null_rate_code_id"] == plan["null_rate_code_id"]
    assert min(plan.values()) >= 4


def test_sample_is_realistic(sample_warehouse):
    conn, report = sample_warehouse
    q = lambda sql: conn.execute(sql).fetchall()  # noqa: E731
    n = report.rows_loaded

    airports = dict(
        q(
            "SELECT pickup_zone_id, count(*) FROM raw_taxis.trips "
            "WHERE pickup_zone_id IN (1, 132, 138) GROUP BY ALL"
        )
    )
    assert set(airports) == {1, 132, 138}
    assert 0.03 < airports[132] / n < 0.08 and 0.015 < airports[138] / n < 0.05
    assert airports[1] < airports[138] < airports[132]

    pickup_boroughs = {
        b
        for (b,) in q(
            "SELECT DISTINCT z.borough FROM raw_taxis.trips t "
            "JOIN raw_taxis.zones z ON z.zone_id = t.pickup_zone_id"
        )
    }
    dropoff_boroughs = dict(
        q(
            "SELECT z.borough, count(*) FROM raw_taxis.trips t "
            "JOIN raw_taxis.zones z ON z.zone_id = t.dropoff_zone_id GROUP BY ALL"
        )
    )
    every = {"Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island", "EWR", "Unknown", "N/A"}
    assert pickup_boroughs == every and set(dropoff_boroughs) == every
    assert dropoff_boroughs["Manhattan"] / n > 0.7

    hours = dict(q("SELECT hour(pickup_datetime), count(*) FROM raw_taxis.trips GROUP BY ALL"))
    assert len(hours) == 24
    assert max(hours.values()) > 4 * min(hours.values())
    assert max(hours, key=hours.get) in range(14, 21) and min(hours, key=hours.get) in range(2, 7)
    # Weekend nights are busier than weekday nights (per day).
    ((weekend_night, weekday_night),) = q(
        "SELECT avg(c) FILTER (WHERE dow IN (0, 6)), avg(c) FILTER (WHERE dow NOT IN (0, 6)) FROM ("
        " SELECT CAST(pickup_datetime AS DATE) d, dayofweek(pickup_datetime) dow, count(*) c"
        " FROM raw_taxis.trips WHERE hour(pickup_datetime) BETWEEN 0 AND 3 GROUP BY ALL)"
    )
    assert weekend_night > 1.5 * weekday_night

    ((corr_distance, corr_duration),) = q(
        "SELECT corr(fare_amount, trip_distance), "
        "corr(fare_amount, epoch(dropoff_datetime - pickup_datetime)) "
        "FROM raw_taxis.trips WHERE rate_code_id = 1"
    )
    assert corr_distance > 0.8 and corr_duration > 0.6
    tips = dict(q("SELECT payment_type, avg(tip_amount) FROM raw_taxis.trips GROUP BY ALL"))
    assert tips[1] > 1.0 and tips[2] == 0.0
    ((jfk_flat,),) = q("SELECT avg(fare_amount) FROM raw_taxis.trips WHERE rate_code_id = 2")
    assert jfk_flat == 70.0
    ((bad_totals,),) = q(
        "SELECT count(*) FROM raw_taxis.trips WHERE abs(total_amount - (fare_amount + extra"
        " + mta_tax + tip_amount + tolls_amount + improvement_surcharge"
        " + coalesce(congestion_surcharge, 0) + coalesce(airport_fee, 0))) > 0.011"
    )
    assert bad_totals == 0
