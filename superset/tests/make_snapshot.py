"""Writes a small DuckDB file shaped like the pipeline's published snapshot (the contract's marts).

Used by the Superset tests and by the stand-alone container check to get a `taxi.duckdb` without
running the pipeline. The values are deterministic (seeded), so the checks can compare Superset's
answers with direct queries. Like the real `published_warehouse` asset, it writes a temporary file
next to the target and `os.replace`s it, so a running Superset never sees a half-written file.

    python make_snapshot.py /path/to/published/taxi.duckdb \\
        [--days 31] [--seed 1] [--start 2023-01-01]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
from pathlib import Path

import duckdb

BOROUGHS = ["Manhattan", "Brooklyn", "Queens", "Bronx", "Staten Island", "EWR"]
# (zone_id, zone, borough, service_zone): a few real TLC zones, airports included
ZONES = [
    (1, "Newark Airport", "EWR", "EWR"),
    (132, "JFK Airport", "Queens", "Airports"),
    (138, "LaGuardia Airport", "Queens", "Airports"),
    (161, "Midtown Center", "Manhattan", "Yellow Zone"),
    (162, "Midtown East", "Manhattan", "Yellow Zone"),
    (186, "Penn Station/Madison Sq West", "Manhattan", "Yellow Zone"),
    (230, "Times Sq/Theatre District", "Manhattan", "Yellow Zone"),
    (236, "Upper East Side North", "Manhattan", "Yellow Zone"),
    (237, "Upper East Side South", "Manhattan", "Yellow Zone"),
    (48, "Clinton East", "Manhattan", "Yellow Zone"),
    (79, "East Village", "Manhattan", "Yellow Zone"),
    (181, "Park Slope", "Brooklyn", "Boro Zone"),
    (7, "Astoria", "Queens", "Boro Zone"),
    (168, "Mott Haven/Port Morris", "Bronx", "Boro Zone"),
]

DDL = """
CREATE TABLE main.location_metrics (
    pickup_zone_id INTEGER,
    pickup_zone VARCHAR,
    pickup_borough VARCHAR,
    destination_borough VARCHAR,
    from_airport BOOLEAN,
    trips BIGINT,
    total_distance DOUBLE,
    total_duration_minutes DOUBLE,
    total_fare DOUBLE,
    trips_over_30_min BIGINT
);
CREATE TABLE main.daily_metrics (
    date_of_business DATE,
    trip_count BIGINT,
    avg_trip_duration_minutes DOUBLE,
    avg_fare_per_trip DOUBLE,
    trips_over_30_min BIGINT,
    share_over_30_min DOUBLE
);
"""


def build(
    path: Path, days: int = 31, seed: int = 1, start: dt.date = dt.date(2023, 1, 1), scale: int = 1
) -> Path:
    """Writes the snapshot to `path` atomically and returns it."""
    rnd = random.Random(seed)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    if tmp.exists():
        tmp.unlink()
    con = duckdb.connect(str(tmp))
    try:
        con.execute(DDL)
        loc_rows = []
        for zone_id, zone, borough, service_zone in ZONES:
            for dest in BOROUGHS:
                trips = rnd.randint(0, 400) * scale
                if trips == 0:
                    continue
                dist = trips * rnd.uniform(1.5, 12.0)
                dur = trips * rnd.uniform(8.0, 45.0)
                fare = trips * rnd.uniform(9.0, 70.0)
                over30 = int(trips * rnd.uniform(0.0, 0.6))
                loc_rows.append(
                    (
                        zone_id,
                        zone,
                        borough,
                        dest,
                        service_zone in ("Airports", "EWR"),
                        trips,
                        round(dist, 3),
                        round(dur, 3),
                        round(fare, 2),
                        over30,
                    )
                )
        con.executemany("INSERT INTO main.location_metrics VALUES (?,?,?,?,?,?,?,?,?,?)", loc_rows)
        daily_rows = []
        for i in range(days):
            day = start + dt.timedelta(days=i)
            count = rnd.randint(500, 1500) * scale
            over30 = int(count * rnd.uniform(0.05, 0.2))
            daily_rows.append(
                (
                    day,
                    count,
                    round(rnd.uniform(11.0, 19.0), 4),
                    round(rnd.uniform(14.0, 22.0), 4),
                    over30,
                    over30 / count,
                )
            )
        con.executemany("INSERT INTO main.daily_metrics VALUES (?,?,?,?,?,?)", daily_rows)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--start", type=dt.date.fromisoformat, default=dt.date(2023, 1, 1))
    args = parser.parse_args()
    out = build(args.path, days=args.days, seed=args.seed, start=args.start, scale=args.scale)
    print(out)


if __name__ == "__main__":
    main()
