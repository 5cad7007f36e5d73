"""Load one month of trips (or the zone lookup) into DuckDB, handling the TLC files' quirks on
purpose.

`load_trips_month` reads the parquet with DuckDB's ``read_parquet`` (no pandas, low memory),
normalises it to the contract's ``raw_taxis.trips`` schema and replaces exactly that month in ONE
transaction::

    BEGIN; CREATE SCHEMA/TABLE IF NOT EXISTS; count quirks;
    DELETE FROM raw_taxis.trips WHERE partition_date = 'YYYY-MM-01'; INSERT ... ; check; COMMIT

Any failure rolls back, so the months already loaded (including an earlier load of the same month)
stay as they were, and loading the same file any number of times leaves the same rows.

Normalisation (2023 and 2024+ files alike): columns are matched case-insensitively (`airport_fee`
or `Airport_fee`), ids and counts cast to INTEGER whatever their file type (int64, int32, double),
timestamps to TIMESTAMP, amounts to DOUBLE; a missing `congestion_surcharge` / `airport_fee`
becomes NULL; extra columns (e.g. 2025's `cbd_congestion_fee`) are ignored.
``trip_id = yyyymm * 10**8 + <1-based row ordinal in the file>`` (e.g. ``20230100000123``, a
BIGINT),
so ids are stable across reloads whatever is dropped. A warehouse from before ids were numbers
(text ids like ``2023-01-01/0000123``) is converted in place, in the same transaction, by the
first load.

Quirk policy. Each row gets the FIRST matching drop reason in this order, so the drop counts are
disjoint and ``rows_in_file == rows_loaded + sum(dropped)`` (checked before COMMIT). ``fixed`` and
``kept`` counts are over the loaded rows.

=============================  ======  ===========================================================
quirk (report key)             action  why
=============================  ======  ===========================================================
missing_timestamp              drop    no pickup or dropoff time: the trip cannot be placed in time
pickup_outside_month           drop    the file's month is the partition; strays (a 2002 pickup in
                                       a 2022 file, the last seconds of the previous month) would
                                       land in another month's partition and break idempotence
dropoff_before_pickup          drop    negative duration: clock/vendor error (seen: vendor 6 rows)
duration_over_24h              drop    meter left running; poisons average durations
missing_zone_id                drop    cannot be attributed to a zone or borough
zone_id_out_of_range           drop    not in the 1..265 lookup: would break joins to zones
negative_amount                drop    total_amount < 0 or fare_amount < 0: refunds / voids that
                                       reverse another trip (payment types 3 no charge, 4 dispute)
negative_trip_distance         drop    not a measurement
implausible_trip_distance      drop    > 500 miles: odometer glitch, would dominate distance sums
rate_code_99_to_null           fix     99 means "unknown" in the data dictionary -> NULL
rate_code_invalid_to_null      fix     any other code outside 1..6 -> NULL
passenger_count_invalid_to_null fix    not a whole number in 0..9 -> NULL
null_passenger_count           keep    NULL (flex-fare / unknown-payment rows have no count)
null_rate_code_id              keep    NULL (same rows)
zero_passenger_count           keep    0 as entered by the driver
zero_trip_distance             keep    a real fare was charged (cancelled/short/GPS-less trips)
zero_duration                  keep    dropoff == pickup; counted only
payment_type_unknown           keep    payment_type 0 or NULL (flex fare / unknown)
vendor_other                   keep    vendors other than 1 and 2 (6 Myle, 7 Helix are valid)
unknown_zone_264_265           keep    pickup or dropoff in 264 Unknown / 265 Outside of NYC:
                                       real zones of the lookup, kept for the dashboards
null_congestion_surcharge      keep    NULL (column missing or value missing)
null_airport_fee               keep    NULL (column missing or value missing)
=============================  ======  ===========================================================

`load_zones` replaces ``raw_taxis.zones`` in one transaction after checking the lookup's layout,
its size (250..300 zones, the real file has 265) and that LocationIDs are unique.

Every check of a file (as opposed to the warehouse) is `verify_trips_file` / `verify_zones_file`
in `tlc.py`, which the download applies too before it replaces a local file: a downloaded file is
never refused here for a reason the download could have seen. The share of a month's pickups
inside the month is counted here by DuckDB, in the pass that counts the quirks, with the same
definition and threshold as the download's pyarrow count (pickups in the month / rows).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from taxi_pipeline.sources.layout import (
    MAX_ZONES,
    MIN_ZONES,
    OPTIONAL_TRIP_COLUMNS,
    RAW_SCHEMA,
    RAW_TRIPS_COLUMNS,
    RAW_TRIPS_TABLE,
    RAW_ZONES_COLUMNS,
    RAW_ZONES_TABLE,
    REQUIRED_TRIP_COLUMNS,
    TRIP_ID_ORDINAL_DIGITS,
    parse_month,
    trip_id_base,
)
from taxi_pipeline.sources.layout import (
    partition_date as month_partition_date,
)
from taxi_pipeline.sources.tlc import (
    MIN_SHARE_IN_MONTH,
    InvalidFileError,
    verify_trips_file,
    verify_zones_file,
)

MAX_ZONE_ID = 265
MAX_TRIP_DISTANCE_MILES = 500
MAX_DURATION_HOURS = 24

# Drop reasons in the order they are tested (first match wins): (key, SQL condition).
DROP_RULES: tuple[tuple[str, str], ...] = (
    ("missing_timestamp", "pickup_datetime IS NULL OR dropoff_datetime IS NULL"),
    ("pickup_outside_month", "pickup_datetime < {start} OR pickup_datetime >= {end}"),
    ("dropoff_before_pickup", "dropoff_datetime < pickup_datetime"),
    (
        "duration_over_24h",
        f"dropoff_datetime - pickup_datetime > INTERVAL {MAX_DURATION_HOURS} HOUR",
    ),
    ("missing_zone_id", "pickup_zone_id IS NULL OR dropoff_zone_id IS NULL"),
    (
        "zone_id_out_of_range",
        f"pickup_zone_id NOT BETWEEN 1 AND {MAX_ZONE_ID} "
        f"OR dropoff_zone_id NOT BETWEEN 1 AND {MAX_ZONE_ID}",
    ),
    ("negative_amount", "total_amount < 0 OR fare_amount < 0"),
    ("negative_trip_distance", "trip_distance < 0"),
    ("implausible_trip_distance", f"trip_distance > {MAX_TRIP_DISTANCE_MILES}"),
)

_VALID_RATE = "rate_code_raw IN (1, 2, 3, 4, 5, 6)"
_VALID_PASSENGERS = (
    "passenger_count_raw = floor(passenger_count_raw) AND passenger_count_raw BETWEEN 0 AND 9"
)

# Among loaded rows: (key, SQL condition) -> the value was replaced by NULL.
FIX_RULES: tuple[tuple[str, str], ...] = (
    ("rate_code_99_to_null", "rate_code_raw = 99"),
    (
        "rate_code_invalid_to_null",
        f"rate_code_raw IS NOT NULL AND rate_code_raw <> 99 AND NOT ({_VALID_RATE})",
    ),
    (
        "passenger_count_invalid_to_null",
        f"passenger_count_raw IS NOT NULL AND NOT ({_VALID_PASSENGERS})",
    ),
)

# Among loaded rows: counted, left as they are.
KEEP_RULES: tuple[tuple[str, str], ...] = (
    ("null_passenger_count", "passenger_count_raw IS NULL"),
    ("null_rate_code_id", "rate_code_raw IS NULL"),
    ("zero_passenger_count", "passenger_count_raw = 0"),
    ("zero_trip_distance", "trip_distance = 0"),
    ("zero_duration", "dropoff_datetime = pickup_datetime"),
    ("payment_type_unknown", "payment_type IS NULL OR payment_type = 0"),
    ("vendor_other", "vendor_id IS NULL OR vendor_id NOT IN (1, 2)"),
    ("unknown_zone_264_265", "pickup_zone_id IN (264, 265) OR dropoff_zone_id IN (264, 265)"),
    ("null_congestion_surcharge", "congestion_surcharge IS NULL"),
    ("null_airport_fee", "airport_fee IS NULL"),
)

# contract column <- (TLC column, SQL cast template); {c} is the quoted source column.
_SOURCE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("vendor_id", "VendorID", "TRY_CAST({c} AS INTEGER)"),
    ("pickup_datetime", "tpep_pickup_datetime", "CAST({c} AS TIMESTAMP)"),
    ("dropoff_datetime", "tpep_dropoff_datetime", "CAST({c} AS TIMESTAMP)"),
    ("passenger_count_raw", "passenger_count", "TRY_CAST({c} AS DOUBLE)"),
    ("trip_distance", "trip_distance", "CAST({c} AS DOUBLE)"),
    ("rate_code_raw", "RatecodeID", "TRY_CAST({c} AS DOUBLE)"),
    ("store_and_fwd_flag", "store_and_fwd_flag", "CAST({c} AS VARCHAR)"),
    ("pickup_zone_id", "PULocationID", "TRY_CAST({c} AS INTEGER)"),
    ("dropoff_zone_id", "DOLocationID", "TRY_CAST({c} AS INTEGER)"),
    ("payment_type", "payment_type", "TRY_CAST({c} AS INTEGER)"),
    ("fare_amount", "fare_amount", "CAST({c} AS DOUBLE)"),
    ("extra", "extra", "CAST({c} AS DOUBLE)"),
    ("mta_tax", "mta_tax", "CAST({c} AS DOUBLE)"),
    ("tip_amount", "tip_amount", "CAST({c} AS DOUBLE)"),
    ("tolls_amount", "tolls_amount", "CAST({c} AS DOUBLE)"),
    ("improvement_surcharge", "improvement_surcharge", "CAST({c} AS DOUBLE)"),
    ("total_amount", "total_amount", "CAST({c} AS DOUBLE)"),
    ("congestion_surcharge", "congestion_surcharge", "CAST({c} AS DOUBLE)"),
    ("airport_fee", "airport_fee", "CAST({c} AS DOUBLE)"),
)


class LoadError(Exception):
    """Loading failed; nothing was changed in the warehouse. The message names file and cause."""


@dataclass
class LoadReport:
    """What a load did. `dropped`/`fixed`/`kept` always hold every rule's key (0 when unused)."""

    rows_in_file: int
    rows_loaded: int
    dropped: dict[str, int]
    fixed: dict[str, int]
    kept: dict[str, int] = field(default_factory=dict)
    table: str = ""
    partition_date: str | None = None
    source: str = ""

    @property
    def rows_dropped(self) -> int:
        return sum(self.dropped.values())

    def as_metadata(self) -> dict[str, int | str]:
        """A flat dict for Dagster materialization metadata (str/int values only)."""
        meta: dict[str, int | str] = {
            "rows_in_file": self.rows_in_file,
            "rows_loaded": self.rows_loaded,
            "rows_dropped": self.rows_dropped,
        }
        if self.table:
            meta["table"] = self.table
        if self.partition_date is not None:
            meta["partition_date"] = self.partition_date
        if self.source:
            meta["source_file"] = self.source
        for prefix, counts in (
            ("dropped", self.dropped),
            ("fixed", self.fixed),
            ("kept", self.kept),
        ):
            for key, value in counts.items():
                meta[f"{prefix}_{key}"] = value
        return meta


def _sql_str(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _sql_literal(value: int | str | None) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return _sql_str(value)


def _ts(value: datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def _table_ddl(table: str, columns: tuple[tuple[str, str], ...]) -> str:
    cols = ", ".join(f"{name} {typ}" for name, typ in columns)
    return f"CREATE TABLE IF NOT EXISTS {table} ({cols})"


def _in_transaction(conn: duckdb.DuckDBPyConnection, steps):
    """Run `steps(conn)` between BEGIN and COMMIT; ROLLBACK on any exception and re-raise."""
    conn.execute("BEGIN TRANSACTION")
    try:
        result = steps(conn)
        conn.execute("COMMIT")
        return result
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise


def _source_select(conn: duckdb.DuckDBPyConnection, path: Path) -> str:
    """SELECT over read_parquet normalising names and types; raise LoadError on missing columns."""
    source = f"read_parquet({_sql_str(str(path))}, file_row_number = true)"
    try:
        described = conn.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        raise LoadError(f"Trips file {path} cannot be read by DuckDB: {exc}") from exc
    by_lower = {row[0].lower(): row[0] for row in described}
    missing = sorted(c for c in REQUIRED_TRIP_COLUMNS if c.lower() not in by_lower)
    if missing:
        raise LoadError(
            f"Trips file {path} lacks required columns {', '.join(missing)}; nothing was loaded."
        )
    exprs = ["file_row_number + 1 AS ordinal"]
    for target, tlc_name, template in _SOURCE_COLUMNS:
        name = by_lower.get(tlc_name.lower())
        if name is None:
            assert tlc_name in OPTIONAL_TRIP_COLUMNS
            exprs.append(f"CAST(NULL AS DOUBLE) AS {target}")
        else:
            quoted = '"' + name.replace('"', '""') + '"'
            exprs.append(f"{template.format(c=quoted)} AS {target}")
    return f"SELECT {', '.join(exprs)} FROM {source}"


def _month_bounds(month: str) -> dict[str, str]:
    start, end = parse_month(month)
    return {
        "start": _ts(datetime(start.year, start.month, start.day)),
        "end": _ts(datetime(end.year, end.month, end.day)),
    }


def _classified_sql(select_sql: str, month: str) -> str:
    bounds = _month_bounds(month)
    cases = " ".join(f"WHEN {cond.format(**bounds)} THEN '{key}'" for key, cond in DROP_RULES)
    return f"SELECT *, CASE {cases} ELSE NULL END AS drop_reason FROM ({select_sql}) AS src"


def load_trips_month(conn: duckdb.DuckDBPyConnection, path: Path, month: str) -> LoadReport:
    """Replace `month` in raw_taxis.trips with the rows of `path` (see the module docstring)."""
    path = Path(path)
    pdate = month_partition_date(month)
    # InvalidFileError naming the file and the cause; the share of pickups inside the month is
    # checked below, from the same pass that counts the quirks
    verify_trips_file(path, month, check_pickups=False)
    classified = _classified_sql(_source_select(conn, path), month)

    # Pickups inside the month whatever the dropoff, as the download's check counts them: a row
    # with a missing dropoff is dropped below, but it does not make the file another month's.
    count_exprs = [
        "count(*)",
        "count(*) FILTER (WHERE pickup_datetime >= {start} AND pickup_datetime < {end})".format(
            **_month_bounds(month)
        ),
    ]
    count_exprs += [f"count(*) FILTER (WHERE drop_reason = '{key}')" for key, _ in DROP_RULES]
    count_exprs += [
        f"count(*) FILTER (WHERE drop_reason IS NULL AND ({cond}))"
        for _, cond in FIX_RULES + KEEP_RULES
    ]
    counts_sql = f"SELECT {', '.join(count_exprs)} FROM ({classified}) AS c"

    target_exprs = {
        "trip_id": f"CAST({trip_id_base(month)} + ordinal AS BIGINT)",
        "passenger_count": (
            f"CASE WHEN {_VALID_PASSENGERS} THEN CAST(passenger_count_raw AS INTEGER) END"
        ),
        "rate_code_id": f"CASE WHEN {_VALID_RATE} THEN CAST(rate_code_raw AS INTEGER) END",
        "partition_date": _sql_str(pdate),
    }
    columns = [name for name, _ in RAW_TRIPS_COLUMNS]
    select_list = ", ".join(target_exprs.get(name, name) for name in columns)
    insert_sql = (
        f"INSERT INTO {RAW_TRIPS_TABLE} ({', '.join(columns)}) "
        f"SELECT {select_list} FROM ({classified}) AS c WHERE drop_reason IS NULL"
    )

    def steps(c: duckdb.DuckDBPyConnection) -> LoadReport:
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        c.execute(_table_ddl(RAW_TRIPS_TABLE, RAW_TRIPS_COLUMNS))
        _convert_text_trip_ids(c)
        values = list(c.execute(counts_sql).fetchone())
        rows_in_file = values.pop(0)
        in_month = values.pop(0)
        dropped = {key: values.pop(0) for key, _ in DROP_RULES}
        fixed = {key: values.pop(0) for key, _ in FIX_RULES}
        kept = {key: values.pop(0) for key, _ in KEEP_RULES}
        if in_month < MIN_SHARE_IN_MONTH * rows_in_file:
            raise LoadError(
                f"Trips file {path} is not the {month} trips file: only {in_month} of its "
                f"{rows_in_file} pickups fall in {month}; nothing was loaded. Fix: delete it and "
                f"fetch it again (materialize taxi_trips_file for {month})."
            )
        expected = rows_in_file - sum(dropped.values())
        c.execute(f"DELETE FROM {RAW_TRIPS_TABLE} WHERE partition_date = ?", [pdate])
        # DuckDB answers an INSERT with the number of rows it wrote: no second scan needed.
        [(loaded,)] = c.execute(insert_sql).fetchall()
        if loaded != expected:
            raise LoadError(
                f"Loading {path} into {RAW_TRIPS_TABLE} for {month} inserted {loaded} rows but "
                f"{expected} were expected ({rows_in_file} in file - {sum(dropped.values())} "
                "dropped); rolled back."
            )
        return LoadReport(
            rows_in_file=rows_in_file,
            rows_loaded=loaded,
            dropped=dropped,
            fixed=fixed,
            kept=kept,
            table=RAW_TRIPS_TABLE,
            partition_date=pdate,
            source=str(path),
        )

    try:
        return _in_transaction(conn, steps)
    except duckdb.Error as exc:
        raise LoadError(
            f"Loading {path} into {RAW_TRIPS_TABLE} for {month} failed and was rolled back "
            f"(earlier loads are untouched): {type(exc).__name__}: {exc}"
        ) from exc


def _convert_text_trip_ids(conn: duckdb.DuckDBPyConnection) -> None:
    """Warehouses written before trip ids were numbers hold text ids 'YYYY-MM-01/0000123':
    convert them in place (same value scheme) so old and new months share one key type."""
    schema, table = RAW_TRIPS_TABLE.split(".")
    [(column_type,)] = conn.execute(
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? AND column_name = 'trip_id'",
        [schema, table],
    ).fetchall()
    if column_type == "BIGINT":
        return
    conn.execute(
        f"ALTER TABLE {RAW_TRIPS_TABLE} ALTER trip_id SET DATA TYPE BIGINT USING "
        "CAST(strftime(CAST(partition_date AS DATE), '%Y%m') AS BIGINT)"
        f" * {10**TRIP_ID_ORDINAL_DIGITS}"
        " + CAST(split_part(trip_id, '/', 2) AS BIGINT)"
    )


def load_zones(
    conn: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    min_rows: int = MIN_ZONES,
    max_rows: int = MAX_ZONES,
) -> LoadReport:
    """Replace raw_taxis.zones with the lookup CSV at `path`, atomically."""
    path = Path(path)
    try:
        # The same checks the download applied before it put the file in place.
        lookup = verify_zones_file(path, min_rows=min_rows, max_rows=max_rows)
    except InvalidFileError as exc:
        raise LoadError(f"{exc} Nothing was loaded: {RAW_ZONES_TABLE} is unchanged.") from exc
    rows = lookup.rows

    def steps(c: duckdb.DuckDBPyConnection) -> LoadReport:
        c.execute(f"CREATE SCHEMA IF NOT EXISTS {RAW_SCHEMA}")
        c.execute(_table_ddl(RAW_ZONES_TABLE, RAW_ZONES_COLUMNS))
        c.execute(f"DELETE FROM {RAW_ZONES_TABLE}")
        names = ", ".join(name for name, _ in RAW_ZONES_COLUMNS)
        # One statement with literals: binding ~1000 parameters is far slower in DuckDB.
        values = ", ".join("(" + ", ".join(_sql_literal(v) for v in row) + ")" for row in rows)
        c.execute(f"INSERT INTO {RAW_ZONES_TABLE} ({names}) VALUES {values}")
        loaded = c.execute(f"SELECT count(*) FROM {RAW_ZONES_TABLE}").fetchone()[0]
        if loaded != len(rows):
            raise LoadError(
                f"Zone lookup {path}: inserted {loaded} of {len(rows)} rows; rolled back."
            )
        special = sum(1 for r in rows if r[1] in ("Unknown", "N/A"))
        return LoadReport(
            rows_in_file=len(rows) + lookup.blank_lines,
            rows_loaded=loaded,
            dropped={"blank_line": lookup.blank_lines},
            fixed={"blank_to_null": lookup.blanks_to_null},
            kept={"unknown_or_outside_nyc": special},
            table=RAW_ZONES_TABLE,
            source=str(path),
        )

    try:
        return _in_transaction(conn, steps)
    except duckdb.Error as exc:
        raise LoadError(
            f"Loading {path} into {RAW_ZONES_TABLE} failed and was rolled back: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
