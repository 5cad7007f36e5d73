"""The TLC file layouts and the normalised raw schema the loaders write.

* `TRIP_COLUMNS_2023`: the 19 columns of a 2023 yellow-taxi parquet file, in file order, with the
  Arrow types the TLC used that year. From 2024 the TLC writes the location ids as int32,
  `passenger_count` / `RatecodeID` as int64 and spells the fee `Airport_fee`; 2025 files add
  `cbd_congestion_fee`. The loader accepts all of these (extra columns are ignored).
* `REQUIRED_TRIP_COLUMNS`: what a trips file must contain to be loadable (compared
  case-insensitively). `congestion_surcharge` and `airport_fee` are optional: older files lack
  them and the loader writes NULL.
* `RAW_TRIPS_COLUMNS` / `RAW_ZONES_COLUMNS`: the contract's `raw_taxis.trips` / `raw_taxis.zones`.
"""

from __future__ import annotations

import os
import re
import secrets
from datetime import date
from pathlib import Path

import pyarrow as pa

TRIP_COLUMNS_2023: dict[str, pa.DataType] = {
    "VendorID": pa.int64(),
    "tpep_pickup_datetime": pa.timestamp("us"),
    "tpep_dropoff_datetime": pa.timestamp("us"),
    "passenger_count": pa.float64(),
    "trip_distance": pa.float64(),
    "RatecodeID": pa.float64(),
    "store_and_fwd_flag": pa.string(),
    "PULocationID": pa.int64(),
    "DOLocationID": pa.int64(),
    "payment_type": pa.int64(),
    "fare_amount": pa.float64(),
    "extra": pa.float64(),
    "mta_tax": pa.float64(),
    "tip_amount": pa.float64(),
    "tolls_amount": pa.float64(),
    "improvement_surcharge": pa.float64(),
    "total_amount": pa.float64(),
    "congestion_surcharge": pa.float64(),
    "airport_fee": pa.float64(),
}

TRIPS_SCHEMA_2023 = pa.schema(list(TRIP_COLUMNS_2023.items()))

OPTIONAL_TRIP_COLUMNS: frozenset[str] = frozenset({"congestion_surcharge", "airport_fee"})
REQUIRED_TRIP_COLUMNS: frozenset[str] = frozenset(TRIP_COLUMNS_2023) - OPTIONAL_TRIP_COLUMNS

# Which kind of Arrow type each TLC column may have in any year (checked by verify_trips_file).
TIMESTAMP_TRIP_COLUMNS: frozenset[str] = frozenset(
    {"tpep_pickup_datetime", "tpep_dropoff_datetime"}
)
STRING_TRIP_COLUMNS: frozenset[str] = frozenset({"store_and_fwd_flag"})
NUMERIC_TRIP_COLUMNS: frozenset[str] = (
    frozenset(TRIP_COLUMNS_2023) - TIMESTAMP_TRIP_COLUMNS - STRING_TRIP_COLUMNS
)

ZONE_COLUMNS = ("LocationID", "Borough", "Zone", "service_zone")
ZONES_FILE_NAME = "taxi_zone_lookup.csv"
# How many zones a lookup may hold to be loaded (the TLC's has 265).
MIN_ZONES, MAX_ZONES = 250, 300

# Zone ids with a fixed meaning in the TLC lookup.
EWR_ZONE_ID = 1
JFK_ZONE_ID = 132
LAGUARDIA_ZONE_ID = 138
AIRPORT_ZONE_IDS = (EWR_ZONE_ID, JFK_ZONE_ID, LAGUARDIA_ZONE_ID)
UNKNOWN_ZONE_ID = 264  # Borough "Unknown", Zone "N/A"
OUTSIDE_NYC_ZONE_ID = 265  # Borough "N/A", Zone "Outside of NYC"
BOROUGHS = ("Bronx", "Brooklyn", "EWR", "Manhattan", "Queens", "Staten Island")

# The contract's raw tables: (column, DuckDB type), in table order.
RAW_TRIPS_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trip_id", "BIGINT"),
    ("vendor_id", "INTEGER"),
    ("pickup_datetime", "TIMESTAMP"),
    ("dropoff_datetime", "TIMESTAMP"),
    ("passenger_count", "INTEGER"),
    ("trip_distance", "DOUBLE"),
    ("rate_code_id", "INTEGER"),
    ("store_and_fwd_flag", "VARCHAR"),
    ("pickup_zone_id", "INTEGER"),
    ("dropoff_zone_id", "INTEGER"),
    ("payment_type", "INTEGER"),
    ("fare_amount", "DOUBLE"),
    ("extra", "DOUBLE"),
    ("mta_tax", "DOUBLE"),
    ("tip_amount", "DOUBLE"),
    ("tolls_amount", "DOUBLE"),
    ("improvement_surcharge", "DOUBLE"),
    ("total_amount", "DOUBLE"),
    ("congestion_surcharge", "DOUBLE"),
    ("airport_fee", "DOUBLE"),
    ("partition_date", "VARCHAR"),
)
RAW_ZONES_COLUMNS: tuple[tuple[str, str], ...] = (
    ("zone_id", "INTEGER"),
    ("borough", "VARCHAR"),
    ("zone", "VARCHAR"),
    ("service_zone", "VARCHAR"),
)
RAW_SCHEMA = "raw_taxis"
RAW_TRIPS_TABLE = f"{RAW_SCHEMA}.trips"
RAW_ZONES_TABLE = f"{RAW_SCHEMA}.zones"

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def parse_month(month: str) -> tuple[date, date]:
    """'YYYY-MM' -> (first day of the month, first day of the next month); ValueError otherwise."""
    match = _MONTH.match(month) if isinstance(month, str) else None
    if not match:
        raise ValueError(f"month {month!r} is not of the form YYYY-MM (e.g. '2023-01')")
    year, mon = int(match.group(1)), int(match.group(2))
    return date(year, mon, 1), date(year + mon // 12, mon % 12 + 1, 1)


def partition_date(month: str) -> str:
    """'2023-01' -> '2023-01-01', the value of raw_taxis.trips.partition_date for that month."""
    return parse_month(month)[0].isoformat()


TRIP_ID_ORDINAL_DIGITS = 8
"""trip_id = yyyymm * 10**8 + the row's 1-based ordinal in the month's file: 20230100000123 is row
123 of January 2023. A number, not text: 36 M ids a year hash and compare far faster as BIGINT."""


def trip_id_base(month: str) -> int:
    """'2023-01' -> 202301 * 10**8, the first trip_id of that month minus one."""
    start = parse_month(month)[0]
    return (start.year * 100 + start.month) * 10**TRIP_ID_ORDINAL_DIGITS


def trips_file_name(month: str) -> str:
    """'2023-01' -> 'yellow_tripdata_2023-01.parquet' (the TLC's own file name)."""
    parse_month(month)
    return f"yellow_tripdata_{month}.parquet"


def new_part_file(dest: Path) -> Path:
    """Create an empty ``.<name>.<random>.part`` file beside `dest` and return its path.

    Beside it, so the final ``os.replace`` onto `dest` is atomic (same filesystem). Created with
    mode 0666 less the process's umask (0644 under the usual 022), as any new file: tempfile's
    0600 would survive the replace and lock out run containers and readers under another user.
    """
    while True:
        tmp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.part")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:  # a name another writer drew: draw again
            continue
        os.close(fd)
        return tmp
