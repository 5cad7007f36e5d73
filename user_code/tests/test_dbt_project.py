"""`dbt build` of the analytics project against small hand-made raw tables, with real numbers.

The fixture is written with DuckDB SQL straight into `raw_taxis.trips` / `raw_taxis.zones` (the
contract's raw schema) in a temporary DuckDB file; dbt runs as a subprocess of this environment's
own `dbt`, with its target and log folders in the temporary folder, so the repository stays clean.

dbt invocations (about 5 s each): one full build, one build of a broken fixture that must fail,
and four window builds of the incremental `daily_metrics` on a third copy.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from pathlib import Path

import duckdb
import pytest

from taxi_pipeline.project import dbt_vars

ANALYTICS_DIR = Path(__file__).resolve().parents[2] / "analytics"

# (zone_id, borough, zone, service_zone): real rows of the TLC lookup, including its odd ones.
ZONES = [
    (1, "EWR", "Newark Airport", "EWR"),
    (61, "Brooklyn", "Crown Heights North", "Boro Zone"),
    (132, "Queens", "JFK Airport", "Airports"),
    (138, "Queens", "LaGuardia Airport", "Airports"),
    (161, "Manhattan", "Midtown Center", "Yellow Zone"),
    (236, "Manhattan", "Upper East Side North", "Yellow Zone"),
    (264, "Unknown", "N/A", "N/A"),
    (265, "N/A", "Outside of NYC", "N/A"),
]
ZONE_BY_ID = {z[0]: z for z in ZONES}
ZONE_IDS = [z[0] for z in ZONES]

# Durations in seconds, cycled over the trips. 1800 s is exactly 30 min (not "over 30");
# 1830 s is 30.5 min (over 30, although date_diff('minute', ...) might say 30); 0 is allowed.
DURATIONS_S = [300, 750, 1800, 1830, 2700, 3675, 0, 1201, 59]

DAYS = [date(2023, 1, d) for d in (1, 2, 3, 4, 5, 31)] + [date(2023, 2, d) for d in (1, 2, 3)]

TRIP_COLUMNS = [
    "trip_id", "vendor_id", "pickup_datetime", "dropoff_datetime", "passenger_count",
    "trip_distance", "rate_code_id", "store_and_fwd_flag", "pickup_zone_id", "dropoff_zone_id",
    "payment_type", "fare_amount", "extra", "mta_tax", "tip_amount", "tolls_amount",
    "improvement_surcharge", "total_amount", "congestion_surcharge", "airport_fee",
    "partition_date",
]  # fmt: skip

RAW_DDL = """
create schema raw_taxis;
create table raw_taxis.zones (
    zone_id integer, borough varchar, "zone" varchar, service_zone varchar
);
create table raw_taxis.trips (
    trip_id bigint, vendor_id integer, pickup_datetime timestamp, dropoff_datetime timestamp,
    passenger_count integer, trip_distance double, rate_code_id integer, store_and_fwd_flag varchar,
    pickup_zone_id integer, dropoff_zone_id integer, payment_type integer,
    fare_amount double, extra double, mta_tax double, tip_amount double, tolls_amount double,
    improvement_surcharge double, total_amount double, congestion_surcharge double,
    airport_fee double, partition_date varchar
);
"""


def _trip_rows() -> list[tuple]:
    """Deterministic trips over two months, with real-data features: NULL passenger counts and
    rate codes, payment type 0, vendor 6, zones 264/265, pickups on day and window edges."""
    pickups: list[tuple[datetime, int]] = []  # (pickup, duration seconds)
    i = 0
    for day in DAYS:
        for k in range(4 + day.day % 5):
            pickup = datetime.combine(day, time(0)) + timedelta(minutes=7 + 131 * k, seconds=i % 60)
            pickups.append((pickup, DURATIONS_S[i % len(DURATIONS_S)]))
            i += 1
    # Edges: last second of a day (dropoff the next day), first instant of a window's end day,
    # and the last minute of January (dropoff in February, still a January trip).
    pickups += [
        (datetime(2023, 1, 1, 23, 59, 59), 240),
        (datetime(2023, 1, 2, 0, 0, 0), 1830),
        (datetime(2023, 1, 4, 0, 0, 0), 60),
        (datetime(2023, 1, 31, 23, 59, 30), 600),
        (datetime(2023, 2, 1, 0, 0, 0), 2400),
    ]
    rows, ordinal = [], defaultdict(int)
    for n, (pickup, seconds) in enumerate(sorted(pickups)):
        partition = pickup.date().replace(day=1).isoformat()
        ordinal[partition] += 1
        fare = round(4.5 + (n % 13) * 2.75, 2)
        tip = round((n % 4) * 1.25, 2)
        rows.append(
            (
                int(partition[:4] + partition[5:7]) * 10**8 + ordinal[partition],
                6 if n % 17 == 0 else 1 + n % 2,
                pickup,
                pickup + timedelta(seconds=seconds),
                None if n % 11 == 0 else n % 5,
                round(0.3 + (n % 9) * 1.7, 2),
                None if n % 7 == 0 else 1 + n % 6,
                None if n % 11 == 0 else ("Y" if n % 10 == 0 else "N"),
                ZONE_IDS[n % len(ZONE_IDS)],
                ZONE_IDS[(3 * n + 1) % len(ZONE_IDS)],
                0 if n % 11 == 0 else 1 + n % 4,
                fare,
                1.0,
                0.5,
                tip,
                0.0,
                1.0,
                round(fare + 1.0 + 0.5 + tip + 1.0, 2),
                None if partition == "2023-01-01" else 2.5,
                None if partition == "2023-01-01" else 0.0,
                partition,
            )
        )
    return rows


TRIPS = _trip_rows()


def _duration_minutes(row: tuple) -> float:
    return (row[3] - row[2]).total_seconds() / 60.0


def _expected_daily(rows: list[tuple]) -> dict[date, tuple]:
    by_day: dict[date, list[tuple]] = defaultdict(list)
    for row in rows:
        by_day[row[2].date()].append(row)
    expected = {}
    for day, trips in by_day.items():
        durations = [_duration_minutes(t) for t in trips]
        over = sum(d > 30 for d in durations)
        expected[day] = (
            len(trips),
            sum(durations) / len(trips),
            sum(t[11] for t in trips) / len(trips),
            over,
            over / len(trips),
        )
    return expected


def _expected_location(rows: list[tuple]) -> dict[tuple, tuple]:
    groups: dict[tuple, list] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0])
    for row in rows:
        pickup_zone = ZONE_BY_ID[row[8]]
        key = (row[8], pickup_zone[2], pickup_zone[1], ZONE_BY_ID[row[9]][1],
               pickup_zone[3] in ("Airports", "EWR"))  # fmt: skip
        g = groups[key]
        g[0] += 1
        g[1] += row[5]
        g[2] += _duration_minutes(row)
        g[3] += row[11]
        g[4] += _duration_minutes(row) > 30
    return {k: tuple(v) for k, v in groups.items()}


def _write_raw(path: Path, trips: list[tuple]) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute(RAW_DDL)
        con.executemany("insert into raw_taxis.zones values (?, ?, ?, ?)", ZONES)
        placeholders = ", ".join("?" for _ in TRIP_COLUMNS)
        con.executemany(f"insert into raw_taxis.trips values ({placeholders})", trips)


def _dbt_executable() -> str:
    # The dbt of the environment running the tests (a venv's bin/ next to its python; not
    # resolved, since the venv's python is usually a symlink to the base interpreter).
    candidate = Path(sys.executable).parent / ("dbt.exe" if os.name == "nt" else "dbt")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        pytest.fail(f"no dbt executable next to {sys.executable} or on PATH")
    return found


def _dbt(db: Path, work: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    """Run one dbt command against `db`; return the process and {unique_id: status}."""
    work.mkdir(parents=True)
    env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    proc = subprocess.run(
        [
            _dbt_executable(),
            *args,
            *dbt_vars(db),
            "--no-use-colors",
            "--project-dir",
            str(ANALYTICS_DIR),
            "--profiles-dir",
            str(ANALYTICS_DIR),
            "--target-path",
            str(work / "target"),
            "--log-path",
            str(work / "logs"),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # The artifacts land in the temporary folder, not in analytics/target.
    results_file = work / "target" / "run_results.json"
    assert results_file.exists(), proc.stdout + proc.stderr
    statuses = {
        r["unique_id"]: r["status"] for r in json.loads(results_file.read_text())["results"]
    }
    return proc, statuses


def _window_args(start: str, end: str) -> list[str]:
    # As Dagster's daily partitions pass them (taxi_pipeline.assets.dbt.event_time_args).
    return ["--event-time-start", start, "--event-time-end", end]


def _query(db: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _daily_rows(db: Path) -> list[tuple]:
    return _query(db, "select * from main.daily_metrics order by date_of_business")


def _assert_daily_equals(actual: list[tuple], expected: dict[date, tuple]) -> None:
    assert [r[0] for r in actual] == sorted(expected)
    for day, count, avg_duration, avg_fare, over, share in actual:
        e = expected[day]
        assert (count, over) == (e[0], e[3]), day
        assert math.isclose(avg_duration, e[1], rel_tol=1e-9), day
        assert math.isclose(avg_fare, e[2], rel_tol=1e-9), day
        assert math.isclose(share, e[4], rel_tol=1e-9), day


@pytest.fixture(scope="module")
def raw_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("raw") / "raw.duckdb"
    _write_raw(path, TRIPS)
    return path


@pytest.fixture(scope="module")
def full_build(raw_db, tmp_path_factory):
    """A developer's plain `dbt build` (no vars) over the good fixture."""
    work = tmp_path_factory.mktemp("full")
    db = work / "warehouse.duckdb"
    shutil.copy(raw_db, db)
    proc, statuses = _dbt(db, work / "build", "build")
    return db, proc, statuses


@pytest.fixture(scope="module")
def incremental_runs(raw_db, tmp_path_factory):
    """daily_metrics built window by window, as Dagster's daily partitions do."""
    work = tmp_path_factory.mktemp("incremental")
    db = work / "warehouse.duckdb"
    shutil.copy(raw_db, db)
    window_a = _window_args("2023-01-02 00:00:00", "2023-01-04 00:00:00")
    window_b = _window_args("2023-02-01 00:00:00", "2023-02-03 00:00:00")
    snapshots = {}

    # First build, not incremental yet: must already be limited to window A.
    proc, _ = _dbt(db, work / "a1", "build", "--select", "stg_trips", "stg_zones", "daily_metrics",
                   *window_a)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    snapshots["a1"] = _daily_rows(db)

    proc, _ = _dbt(db, work / "a2", "build", "--select", "daily_metrics", *window_a)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    snapshots["a2"] = _daily_rows(db)

    proc, _ = _dbt(db, work / "b1", "build", "--select", "daily_metrics", *window_b)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    snapshots["b1"] = _daily_rows(db)

    # The trips of 2023-02-02 disappear upstream (a month reloaded): re-running window B must
    # drop that day's row, not keep a stale one.
    with duckdb.connect(str(db)) as con:
        con.execute(
            "delete from raw_taxis.trips where cast(pickup_datetime as date) = date '2023-02-02'"
        )
    proc, _ = _dbt(db, work / "b2", "build", "--select", "daily_metrics", *window_b)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    snapshots["b2"] = _daily_rows(db)
    return snapshots


@pytest.fixture(scope="module")
def broken_build(raw_db, tmp_path_factory):
    """The good fixture plus rows that break the staging contract."""
    work = tmp_path_factory.mktemp("broken")
    db = work / "warehouse.duckdb"
    shutil.copy(raw_db, db)
    template = list(TRIPS[1])
    bad = []
    # A dropoff before its pickup (negative duration).
    row = template.copy()
    row[0], row[3] = 20230100900001, row[2] - timedelta(minutes=5)
    bad.append(tuple(row))
    # A pickup zone that is not in the zone lookup.
    row = template.copy()
    row[0], row[8] = 20230100900002, 999
    bad.append(tuple(row))
    # A negative total (a refund the loader should have dropped).
    row = template.copy()
    row[0], row[11], row[17] = 20230100900003, -12.5, -15.0
    bad.append(tuple(row))
    placeholders = ", ".join("?" for _ in TRIP_COLUMNS)
    with duckdb.connect(str(db)) as con:
        con.executemany(f"insert into raw_taxis.trips values ({placeholders})", bad)
    return _dbt(db, work / "build", "build")


def test_fixture_covers_the_real_quirks():
    assert any(t[4] is None for t in TRIPS) and any(t[6] is None for t in TRIPS)
    assert {264, 265} <= {t[8] for t in TRIPS} and {264, 265} <= {t[9] for t in TRIPS}
    assert any(_duration_minutes(t) == 30 for t in TRIPS)
    assert any(_duration_minutes(t) == 30.5 for t in TRIPS)
    assert len({t[0] for t in TRIPS}) == len(TRIPS)


def test_dbt_build_passes_every_test(full_build):
    _, proc, statuses = full_build
    assert proc.returncode == 0, proc.stdout + proc.stderr
    models = {k for k in statuses if k.startswith("model.")}
    assert models == {
        f"model.analytics.{m}"
        for m in ("stg_trips", "stg_zones", "location_metrics", "daily_metrics")
    }
    tests = {k: v for k, v in statuses.items() if k.startswith("test.")}
    assert len(tests) >= 50
    assert set(tests.values()) == {"pass"}, {k: v for k, v in tests.items() if v != "pass"}
    assert "test.analytics.assert_location_metrics_trips_match_stg_trips" in tests
    assert "test.analytics.assert_daily_metrics_match_stg_trips" in tests


def test_contract_column_types(full_build):
    db = full_build[0]
    types = {
        (table, column): dtype
        for table, column, dtype in _query(
            db,
            "select table_name, column_name, data_type from information_schema.columns "
            "where table_schema = 'main'",
        )
    }
    assert {c for t, c in types if t == "daily_metrics"} == {
        "date_of_business", "trip_count", "avg_trip_duration_minutes", "avg_fare_per_trip",
        "trips_over_30_min", "share_over_30_min",
    }  # fmt: skip
    assert types["daily_metrics", "date_of_business"] == "DATE"
    assert types["daily_metrics", "trip_count"] == "BIGINT"
    assert types["daily_metrics", "trips_over_30_min"] == "BIGINT"
    assert types["daily_metrics", "share_over_30_min"] == "DOUBLE"
    assert {c for t, c in types if t == "location_metrics"} == {
        "pickup_zone_id", "pickup_zone", "pickup_borough", "destination_borough", "from_airport",
        "trips", "total_distance", "total_duration_minutes", "total_fare", "trips_over_30_min",
    }  # fmt: skip
    assert types["location_metrics", "trips"] == "BIGINT"
    assert types["location_metrics", "from_airport"] == "BOOLEAN"
    assert [c for t, c in types if t == "stg_trips"] == [
        "trip_id", "vendor_id", "pickup_zone_id", "dropoff_zone_id", "rate_code_id",
        "payment_type", "pickup_datetime", "dropoff_datetime", "duration_minutes",
        "trip_distance", "passenger_count", "fare_amount", "tip_amount", "total_amount",
        "partition_date",
    ]  # fmt: skip
    assert types["stg_trips", "duration_minutes"] == "DOUBLE"
    assert [c for t, c in types if t == "stg_zones"] == [
        "zone_id", "zone_name", "borough", "service_zone", "is_airport",
    ]  # fmt: skip


def test_staging_keeps_every_trip_and_the_real_zone_labels(full_build):
    db = full_build[0]
    assert _query(db, "select count(*) from main.stg_trips") == [(len(TRIPS),)]
    zones = dict(
        (
            (z, (b, a))
            for z, b, a in _query(db, "select zone_id, borough, is_airport from main.stg_zones")
        )
    )
    assert zones[264] == ("Unknown", False) and zones[265] == ("N/A", False)
    assert (
        zones[1] == ("EWR", True)
        and zones[132] == ("Queens", True)
        and zones[161] == ("Manhattan", False)
    )
    # Exact minutes from epoch seconds: 30.5, not a truncated 30.
    durations = {
        trip_id: minutes
        for trip_id, minutes in _query(db, "select trip_id, duration_minutes from main.stg_trips")
    }
    assert durations == pytest.approx({t[0]: _duration_minutes(t) for t in TRIPS})
    assert 30.5 in durations.values()


def test_location_metrics_numbers(full_build):
    db = full_build[0]
    rows = _query(db, "select * from main.location_metrics")
    expected = _expected_location(TRIPS)
    actual = {r[:5]: r[5:] for r in rows}
    assert set(actual) == set(expected)
    for key, (trips, distance, duration, fare, over) in actual.items():
        e = expected[key]
        assert (trips, over) == (e[0], e[4]), key
        assert (distance, duration, fare) == pytest.approx(e[1:4]), key
    assert sum(r[5] for r in rows) == len(TRIPS)
    assert _query(db, "select sum(trips) from main.location_metrics") == _query(
        db, "select count(*) from main.stg_trips"
    )
    # The odd boroughs are destinations like any other.
    assert {"Unknown", "N/A", "EWR"} <= {r[3] for r in rows}


def test_daily_metrics_equal_an_independent_recount(full_build):
    db = full_build[0]
    actual = _daily_rows(db)
    _assert_daily_equals(actual, _expected_daily(TRIPS))
    # ... and an independent GROUP BY over stg_trips in SQL.
    recount = _query(
        db,
        """
        select cast(pickup_datetime as date), count(*), avg(duration_minutes), avg(fare_amount),
               sum(case when duration_minutes > 30 then 1 else 0 end)
        from main.stg_trips group by 1 order by 1
        """,
    )
    assert [(r[0], r[1], r[4]) for r in recount] == [(r[0], r[1], r[4]) for r in actual]
    assert [v for r in recount for v in r[2:4]] == pytest.approx(
        [v for r in actual for v in r[2:4]]
    )


def test_daily_metrics_first_build_is_limited_to_the_window(incremental_runs):
    window_a = {
        d: v for d, v in _expected_daily(TRIPS).items() if date(2023, 1, 2) <= d < date(2023, 1, 4)
    }
    # Half-open: the 2023-01-04 00:00:00 trip and the 2023-01-01 23:59:59 one are outside.
    assert sorted(window_a) == [date(2023, 1, 2), date(2023, 1, 3)]
    _assert_daily_equals(incremental_runs["a1"], window_a)


def test_daily_metrics_same_window_twice_is_idempotent(incremental_runs):
    assert incremental_runs["a2"] == incremental_runs["a1"]


def test_daily_metrics_two_windows_give_the_union(incremental_runs):
    expected = _expected_daily(TRIPS)
    union = {
        d: v
        for d, v in expected.items()
        if date(2023, 1, 2) <= d < date(2023, 1, 4) or date(2023, 2, 1) <= d < date(2023, 2, 3)
    }
    _assert_daily_equals(incremental_runs["b1"], union)
    assert incremental_runs["b1"][:2] == incremental_runs["a1"]


def test_daily_metrics_rerun_drops_a_day_without_trips(incremental_runs):
    days = [r[0] for r in incremental_runs["b2"]]
    assert days == [date(2023, 1, 2), date(2023, 1, 3), date(2023, 2, 1)]
    assert incremental_runs["b2"] == [r for r in incremental_runs["b1"] if r[0] != date(2023, 2, 2)]


def test_dbt_build_fails_on_rows_that_break_the_contract(broken_build):
    proc, statuses = broken_build
    assert proc.returncode != 0
    failed = {k for k, v in statuses.items() if v in ("fail", "error")}
    for prefix in (
        "test.analytics.non_negative_stg_trips_duration_minutes",
        "test.analytics.non_negative_stg_trips_total_amount",
        "test.analytics.relationships_stg_trips_pickup_zone_id",
    ):
        assert any(k.startswith(prefix) for k in failed), (prefix, failed)
    # Nothing else is reported broken, and the marts are not built on top of bad staging data.
    assert all(
        k.startswith(
            ("test.analytics.non_negative_stg_trips", "test.analytics.relationships_stg_trips")
        )
        for k in failed
    ), failed
    assert statuses.get("model.analytics.location_metrics") == "skipped"
    assert statuses.get("model.analytics.daily_metrics") == "skipped"
