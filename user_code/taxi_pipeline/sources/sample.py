"""Deterministic synthetic TLC data: a month of yellow trips in the 2023 parquet layout, and the
zone lookup.

Used by the ``sample`` data source (offline demos, tests). Same ``(month, rows, seed)`` -> the same
bytes: every random number comes from ``numpy.random.default_rng([seed, year, month, chunk])``,
and the file is written with fixed parquet options.

What makes it realistic enough for the dashboards (all vectorised numpy, generated in chunks of
`CHUNK_ROWS` so 3 million rows stay within a few hundred MB):

* pickup times follow an hourly profile (morning ramp, evening peak, weekend nights) times a
  weekday factor (Thursday/Friday busiest, Sunday/Monday quietest);
* pickup zones by area, about 88 % Manhattan, JFK (132) ~5 %, LaGuardia (138) ~3 %, Newark (1)
  rare but always present, the rest of Queens, Brooklyn, the Bronx, Staten Island, and the
  lookup's 264 "Unknown" / 265 "Outside of NYC"; dropoff areas depend on the pickup area (airport
  trips mostly go to Manhattan, outer-borough trips mostly stay local);
* distances from synthetic zone positions (miles), durations from an hour-dependent speed, the
  2023 meter (3.00 + 0.70 per unit), JFK<->Manhattan flat fare 70 (rate code 2), Newark rate 3,
  Nassau/Westchester rate 4 and a few negotiated fares (5); extra, MTA tax, improvement and
  congestion surcharges, airport fee, tolls on crossings; tips for card payments (payment 1 and
  flex/unknown 0), none for cash, no-charge and disputes;
* a small, controlled number of real-file quirks on disjoint rows (see `sample_quirk_counts`):
  pickups outside the month (the previous month's last minutes, the next month's first, a stray
  from 20 years ago), dropoffs before pickups, refunds with negative amounts, rate code 99, and
  flex-fare rows (payment type 0) with NULL passenger_count, RatecodeID, store_and_fwd_flag,
  congestion_surcharge and airport_fee, like the real files.
"""

from __future__ import annotations

import csv
import os
from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from taxi_pipeline.sources._zone_table import ZONES
from taxi_pipeline.sources.layout import (
    EWR_ZONE_ID,
    JFK_ZONE_ID,
    LAGUARDIA_ZONE_ID,
    OUTSIDE_NYC_ZONE_ID,
    TRIPS_SCHEMA_2023,
    UNKNOWN_ZONE_ID,
    ZONE_COLUMNS,
    ZONES_FILE_NAME,
    new_part_file,
    parse_month,
    trips_file_name,
)

CHUNK_ROWS = 500_000
ROW_GROUP_ROWS = 500_000

# ---------------------------------------------------------------------------------------------
# Geography: areas, zone weights and positions (fixed, independent of the seed).

AREAS = (
    "Manhattan",
    "Brooklyn",
    "Queens",
    "Bronx",
    "Staten Island",
    "EWR",
    "JFK",
    "LGA",
    "Unknown",
    "Outside",
)
_A = {name: i for i, name in enumerate(AREAS)}
MAN, BKN, QNS, BRX, SI, EWR, JFK, LGA, UNK, OUT = range(len(AREAS))

# Share of pickups per area (normalised below).
_PICKUP_SHARE = np.array([0.877, 0.013, 0.012, 0.004, 0.0004, 0.0006, 0.050, 0.031, 0.010, 0.002])
# Dropoff area given pickup area (rows: pickup area, columns: dropoff area; normalised below).
_DROPOFF_GIVEN_PICKUP = np.array(
    [
        #  MAN    BKN    QNS    BRX    SI     EWR    JFK    LGA    UNK    OUT
        [85.0, 4.5, 3.6, 1.3, 0.05, 0.25, 1.3, 1.6, 1.0, 0.4],  # Manhattan
        [30.0, 55.0, 7.0, 1.0, 1.0, 0.3, 2.0, 1.0, 1.5, 1.2],  # Brooklyn
        [25.0, 10.0, 50.0, 3.0, 0.3, 0.2, 4.0, 4.0, 2.0, 1.5],  # Queens
        [25.0, 3.0, 5.0, 60.0, 0.1, 0.1, 1.0, 2.0, 2.0, 1.8],  # Bronx
        [20.0, 20.0, 3.0, 1.0, 50.0, 2.0, 1.0, 0.5, 1.5, 1.0],  # Staten Island
        [60.0, 10.0, 5.0, 2.0, 2.0, 8.0, 1.0, 1.0, 1.0, 10.0],  # EWR
        [52.0, 19.0, 18.0, 3.0, 0.5, 0.4, 0.5, 1.0, 2.6, 3.0],  # JFK
        [60.0, 11.0, 16.0, 4.5, 0.3, 0.3, 1.0, 0.4, 2.5, 4.0],  # LGA
        [30.0, 5.0, 5.0, 2.0, 0.5, 0.5, 2.0, 2.0, 50.0, 3.0],  # Unknown (264)
        [25.0, 5.0, 5.0, 3.0, 1.0, 2.0, 2.0, 2.0, 5.0, 50.0],  # Outside NYC (265)
    ]
)

# Approximate area centres in miles east/north of Midtown and their spread.
_AREA_CENTRE = {
    BKN: (2.0, -7.0, 2.2),
    QNS: (8.0, 0.0, 3.0),
    BRX: (4.0, 10.0, 2.0),
    SI: (-7.0, -12.0, 2.5),
    EWR: (-11.0, -4.0, 0.0),
    JFK: (13.0, -8.0, 0.0),
    LGA: (7.0, 3.5, 0.0),
}


def _area_of(zone_id: int, borough: str) -> int:
    if zone_id == EWR_ZONE_ID:
        return EWR
    if zone_id == JFK_ZONE_ID:
        return JFK
    if zone_id == LAGUARDIA_ZONE_ID:
        return LGA
    if zone_id == UNKNOWN_ZONE_ID:
        return UNK
    if zone_id == OUTSIDE_NYC_ZONE_ID:
        return OUT
    return _A[borough]


def _build_geography():
    rng = np.random.default_rng(265)  # geography is the same for every seed and month
    ids = np.array([z[0] for z in ZONES], dtype=np.int64)
    area = np.array([_area_of(z[0], z[1]) for z in ZONES], dtype=np.int64)
    weight = rng.lognormal(0.0, 1.0, size=len(ZONES))
    core = np.array([z[3] == "Yellow Zone" for z in ZONES])
    weight = np.where(core, weight * 6.0, weight)
    x = np.full(len(ZONES), np.nan)
    y = np.full(len(ZONES), np.nan)
    for i in range(len(ZONES)):
        a = area[i]
        if a == MAN:
            yy = rng.uniform(-4.0, 5.0) if core[i] else rng.uniform(5.0, 10.0)
            x[i], y[i] = 0.15 * yy + rng.normal(0.0, 0.6), yy
        elif a in _AREA_CENTRE:
            cx, cy, spread = _AREA_CENTRE[a]
            x[i], y[i] = cx + rng.normal(0.0, spread), cy + rng.normal(0.0, spread)
    members = [np.flatnonzero(area == a) for a in range(len(AREAS))]
    probs = [weight[m] / weight[m].sum() for m in members]
    return ids, area, x, y, members, probs


_ZONE_IDS, _ZONE_AREA, _ZONE_X, _ZONE_Y, _AREA_MEMBERS, _AREA_PROBS = _build_geography()


def _build_local_choice():
    """For each zone of the five boroughs: dropoff zones of its own area, weighted by popularity x
    exp(-distance / L) (L = 1.5 miles in Manhattan, 2.5 elsewhere)."""
    members, probs = {}, {}
    for i, zone_id in enumerate(_ZONE_IDS):
        a = _ZONE_AREA[i]
        if a > SI:
            continue
        m = _AREA_MEMBERS[a]
        d = np.hypot(_ZONE_X[m] - _ZONE_X[i], _ZONE_Y[m] - _ZONE_Y[i])
        w = _AREA_PROBS[a] * np.exp(-d / (1.5 if a == MAN else 2.5))
        members[int(zone_id)], probs[int(zone_id)] = m, w / w.sum()
    return members, probs


_LOCAL_MEMBERS, _LOCAL_PROBS = _build_local_choice()

# ---------------------------------------------------------------------------------------------
# Time: relative trips per hour of day (weekday / weekend) and per weekday (Mon..Sun).

_HOURLY_WEEKDAY = np.array(
    [
        2.0,
        1.2,
        0.8,
        0.5,
        0.4,
        0.6,
        1.5,
        3.0,
        4.0,
        4.3,
        4.6,
        5.0,
        5.4,
        5.6,
        6.0,
        6.2,
        6.3,
        7.0,
        7.3,
        6.5,
        5.8,
        5.8,
        5.3,
        3.8,
    ]
)
_HOURLY_WEEKEND = np.array(
    [
        4.5,
        3.8,
        2.8,
        1.9,
        1.1,
        0.6,
        0.6,
        0.9,
        1.5,
        2.5,
        3.6,
        4.6,
        5.3,
        5.6,
        5.8,
        5.8,
        5.8,
        6.0,
        6.2,
        5.8,
        5.3,
        5.2,
        5.1,
        4.6,
    ]
)
_WEEKDAY_FACTOR = np.array([0.85, 0.97, 1.02, 1.07, 1.05, 1.0, 0.83])
# Average street speed in mph by hour (weekday / weekend).
_SPEED_WEEKDAY = np.array(
    [
        17,
        18,
        19,
        20,
        20,
        18,
        14,
        11,
        9.5,
        9.5,
        9.5,
        9.5,
        9.5,
        9.5,
        9.0,
        8.8,
        8.5,
        8.5,
        9.0,
        10.5,
        12,
        13,
        14,
        15.5,
    ]
)
_SPEED_WEEKEND = np.array(
    [
        16,
        17,
        18,
        19,
        20,
        20,
        18,
        16,
        15,
        13,
        12,
        11,
        10.5,
        10.5,
        10.5,
        10.5,
        10.5,
        10.5,
        11,
        11.5,
        12,
        13,
        14,
        15,
    ]
)

_US_PER_S = 1_000_000

# ---------------------------------------------------------------------------------------------
# Quirks: disjoint rows, counts a pure function of `rows`.

_QUIRK_SHARES = (
    ("pickup_outside_month", 0.0002),
    ("dropoff_before_pickup", 0.0002),
    ("negative_amount", 0.004),
    ("rate_code_99", 0.001),
    ("flex_fare", 0.02),  # payment_type 0 with NULL passenger_count / RatecodeID / ...
)


def _quirk_plan(rows: int) -> dict[str, int]:
    plan = {}
    for name, share in _QUIRK_SHARES:
        n = round(rows * share)
        if rows >= 500:
            n = max(n, 1)
        plan[name] = n
    while sum(plan.values()) > rows:  # only for absurdly small files
        biggest = max(plan, key=plan.get)
        plan[biggest] -= 1
    return plan


def sample_quirk_counts(rows: int) -> dict[str, int]:
    """The exact quirk counts `loading.load_trips_month` reports for a sample file of `rows` rows.

    Keys are the loader's: dropped `pickup_outside_month`, `dropoff_before_pickup`,
    `negative_amount`; fixed `rate_code_99_to_null`; kept `null_passenger_count`,
    `null_rate_code_id`. Every other drop/fix rule counts 0 on sample data.
    """
    plan = _quirk_plan(rows)
    return {
        "pickup_outside_month": plan["pickup_outside_month"],
        "dropoff_before_pickup": plan["dropoff_before_pickup"],
        "negative_amount": plan["negative_amount"],
        "rate_code_99_to_null": plan["rate_code_99"],
        "null_passenger_count": plan["flex_fare"],
        "null_rate_code_id": plan["flex_fare"],
    }


# ---------------------------------------------------------------------------------------------
# Generation


def _epoch_us(day: date) -> int:
    """Microseconds since 1970-01-01 of midnight (naive, like the TLC's timestamps) of `day`."""
    return (day - date(1970, 1, 1)).days * 86400 * _US_PER_S


def _month_hours(start: date, end: date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per hour of the month: weight, hour of day, is-weekend; index 0 = first hour."""
    days = (end - start).days
    weekday = (np.arange(days) + start.weekday()) % 7
    weekend = weekday >= 5
    profile = np.where(weekend[:, None], _HOURLY_WEEKEND[None, :], _HOURLY_WEEKDAY[None, :])
    weights = (profile * _WEEKDAY_FACTOR[weekday][:, None]).ravel()
    hours = np.tile(np.arange(24), days)
    return weights / weights.sum(), hours, np.repeat(weekend, 24)


def _pick_zones(rng: np.random.Generator, areas: np.ndarray) -> np.ndarray:
    zones = np.empty(len(areas), dtype=np.int64)
    for a in range(len(AREAS)):
        mask = areas == a
        k = int(mask.sum())
        if k:
            zones[mask] = _ZONE_IDS[rng.choice(_AREA_MEMBERS[a], size=k, p=_AREA_PROBS[a])]
    return zones


def _chunk(
    rng: np.random.Generator,
    n: int,
    month_start_us: int,
    hour_p: np.ndarray,
    hour_of_day: np.ndarray,
    hour_weekend: np.ndarray,
    pickup_area_counts: np.ndarray,
) -> dict[str, np.ndarray]:
    # --- when
    hour_idx = rng.choice(len(hour_p), size=n, p=hour_p)
    pickup_us = month_start_us + hour_idx.astype(np.int64) * 3600 * _US_PER_S
    pickup_us += rng.integers(0, 3600, size=n) * _US_PER_S
    hod = hour_of_day[hour_idx]
    weekend = hour_weekend[hour_idx]

    # --- where
    pu_area = np.repeat(np.arange(len(AREAS)), pickup_area_counts)
    rng.shuffle(pu_area)
    do_area = np.empty(n, dtype=np.int64)
    trans = _DROPOFF_GIVEN_PICKUP / _DROPOFF_GIVEN_PICKUP.sum(axis=1, keepdims=True)
    for a in range(len(AREAS)):
        mask = pu_area == a
        k = int(mask.sum())
        if k:
            do_area[mask] = rng.choice(len(AREAS), size=k, p=trans[a])
    pu = _pick_zones(rng, pu_area)
    do = _pick_zones(rng, do_area)
    # Trips within one area favour nearby zones (distance decay), most of all in Manhattan.
    local = np.flatnonzero((pu_area == do_area) & (pu_area <= SI))
    if len(local):
        order = local[np.argsort(pu[local], kind="stable")]
        zones, starts = np.unique(pu[order], return_index=True)
        bounds = np.append(starts, len(order))
        for zone, lo, hi in zip(zones, bounds[:-1], bounds[1:], strict=True):
            rows = order[lo:hi]
            do[rows] = _ZONE_IDS[
                rng.choice(_LOCAL_MEMBERS[zone], size=hi - lo, p=_LOCAL_PROBS[zone])
            ]

    # --- how far, how long
    pi, di = pu - 1, do - 1
    dx, dy = _ZONE_X[di] - _ZONE_X[pi], _ZONE_Y[di] - _ZONE_Y[pi]
    dist = np.hypot(dx, dy) * 1.25 * rng.lognormal(0.0, 0.12, size=n)
    same = pu == do
    dist = np.where(same, rng.lognormal(np.log(0.9), 0.5, size=n), dist)
    unknown = np.isnan(dist)
    outside = (pu_area == OUT) | (do_area == OUT)
    dist = np.where(unknown & outside, rng.lognormal(np.log(18.0), 0.4, size=n), dist)
    dist = np.where(np.isnan(dist), rng.lognormal(np.log(3.5), 0.9, size=n), dist)
    dist = np.maximum(dist, 0.05)
    dist = np.where(rng.random(n) < 0.01, 0.0, dist)  # GPS-less / cancelled: real files have ~1 %
    dist = np.round(dist, 2)

    speed = np.where(weekend, _SPEED_WEEKEND[hod], _SPEED_WEEKDAY[hod])
    speed = np.where(dist > 8, speed * 1.7, speed)
    minutes = dist / speed * 60.0 * rng.lognormal(0.0, 0.3, size=n) + rng.uniform(1.0, 3.0, size=n)
    duration_s = np.clip(np.round(minutes * 60.0), 60, 4 * 3600).astype(np.int64)
    minutes = duration_s / 60.0
    dropoff_us = pickup_us + duration_s * _US_PER_S

    # --- rate codes and fares
    rate = np.ones(n)
    jfk_man = ((pu_area == JFK) & (do_area == MAN)) | ((pu_area == MAN) & (do_area == JFK))
    rate[jfk_man] = 2.0
    rate[do_area == EWR] = 3.0
    rate[(do_area == OUT) & (rng.random(n) < 0.3)] = 4.0
    negotiated = rng.random(n) < 0.004
    rate[negotiated] = 5.0

    metered = 3.0 + 0.7 * np.round((2.8 * dist + 0.35 * minutes) / 0.7)
    fare = metered
    fare = np.where(rate == 2.0, 70.0, fare)
    fare = np.where(rate == 3.0, metered + 20.0, fare)
    fare = np.where(rate == 4.0, np.round(metered * 1.6, 1), fare)
    fare = np.where(rate == 5.0, np.round(rng.uniform(20.0, 120.0, size=n)), fare)

    rush = (~weekend) & (hod >= 16) & (hod < 20)
    night = (hod >= 20) | (hod < 6)
    extra = np.where(rush, 2.5, np.where(night, 1.0, 0.0))
    extra = np.where(rate == 2.0, np.where(rush, 5.0, 0.0), extra)
    mta_tax = np.full(n, 0.5)
    improvement = np.full(n, 1.0)
    congestion = np.where((pu_area == MAN) | (do_area == MAN), 2.5, 0.0)
    airport_fee = np.where((pu_area == JFK) | (pu_area == LGA), 1.75, 0.0)

    crossing = (pu_area != do_area) & (
        (pu_area == MAN)
        | (do_area == MAN)
        | (pu_area == SI)
        | (do_area == SI)
        | (pu_area == JFK)
        | (do_area == JFK)
    )
    tolls = np.where(crossing & (rng.random(n) < 0.35), 6.94, 0.0)
    tolls = np.where((do_area == EWR) & (rng.random(n) < 0.9), 17.38, tolls)

    # --- who pays how
    vendor = np.where(rng.random(n) < 0.26, 1, 2).astype(np.int64)
    passengers = rng.choice(7, size=n, p=[0.015, 0.74, 0.15, 0.04, 0.02, 0.02, 0.015]).astype(float)
    payment = rng.choice(np.array([1, 2, 3, 4]), size=n, p=[0.79, 0.185, 0.007, 0.018])
    tip_pct = rng.choice(
        np.array([0.0, 0.1, 0.15, 0.2, 0.25, 0.3]), size=n, p=[0.1, 0.05, 0.2, 0.35, 0.2, 0.1]
    )
    pre_tip = fare + extra + mta_tax + improvement + congestion + airport_fee + tolls
    tip = np.round(tip_pct * pre_tip * rng.lognormal(0.0, 0.05, size=n), 2)
    tip = np.where(payment == 1, tip, 0.0)
    store_fwd = np.where((vendor == 1) & (rng.random(n) < 0.015), 1, 0)  # index into ["N", "Y"]

    return {
        "VendorID": vendor,
        "pickup_us": pickup_us,
        "dropoff_us": dropoff_us,
        "duration_s": duration_s,
        "passenger_count": passengers,
        "trip_distance": dist,
        "RatecodeID": rate,
        "store_fwd": store_fwd,
        "PULocationID": pu,
        "DOLocationID": do,
        "payment_type": payment.astype(np.int64),
        "fare_amount": np.round(fare, 2),
        "extra": extra,
        "mta_tax": mta_tax,
        "tip_amount": tip,
        "tolls_amount": tolls,
        "improvement_surcharge": improvement,
        "congestion_surcharge": congestion,
        "airport_fee": airport_fee,
        "tip_pct": tip_pct,
    }


def _apply_quirks(
    rng: np.random.Generator,
    c: dict[str, np.ndarray],
    quirks: dict[str, np.ndarray],
    month_start_us: int,
    month_end_us: int,
) -> np.ndarray:
    """Mutate chunk arrays in place; return the null mask of the flex-fare rows."""
    idx = quirks["pickup_outside_month"]
    for j, i in enumerate(idx):
        kind = j % 3
        if kind == 0:  # a stray from about 20 years earlier
            c["pickup_us"][i] -= 20 * 365 * 86400 * _US_PER_S
        elif kind == 1:  # the previous month's last minutes
            c["pickup_us"][i] = month_start_us - int(rng.integers(1, 900)) * _US_PER_S
        else:  # the next month's first minutes
            c["pickup_us"][i] = month_end_us + int(rng.integers(0, 900)) * _US_PER_S
        c["dropoff_us"][i] = c["pickup_us"][i] + c["duration_s"][i] * _US_PER_S

    idx = quirks["dropoff_before_pickup"]
    c["dropoff_us"][idx] = c["pickup_us"][idx] - rng.integers(5, 60, size=len(idx)) * _US_PER_S

    idx = quirks["negative_amount"]  # voided trips: every amount reversed, no tip
    c["payment_type"][idx] = rng.choice(np.array([3, 4]), size=len(idx))
    c["tip_amount"][idx] = 0.0
    for name in (
        "fare_amount",
        "extra",
        "mta_tax",
        "tolls_amount",
        "improvement_surcharge",
        "congestion_surcharge",
        "airport_fee",
    ):
        c[name][idx] = -c[name][idx]

    idx = quirks["rate_code_99"]
    c["RatecodeID"][idx] = 99.0
    c["VendorID"][idx] = 1

    idx = quirks["flex_fare"]
    c["payment_type"][idx] = 0
    c["congestion_surcharge"][idx] = 0.0  # written as NULL, not part of the total
    c["airport_fee"][idx] = 0.0
    pre_tip = (
        c["fare_amount"][idx]
        + c["extra"][idx]
        + c["mta_tax"][idx]
        + c["tolls_amount"][idx]
        + c["improvement_surcharge"][idx]
        + c["congestion_surcharge"][idx]
        + c["airport_fee"][idx]
    )
    c["tip_amount"][idx] = np.round(c["tip_pct"][idx] * pre_tip, 2)
    flex = np.zeros(len(c["VendorID"]), dtype=bool)
    flex[idx] = True
    return flex


def _to_table(c: dict[str, np.ndarray], flex: np.ndarray) -> pa.Table:
    total = np.round(
        c["fare_amount"]
        + c["extra"]
        + c["mta_tax"]
        + c["tip_amount"]
        + c["tolls_amount"]
        + c["improvement_surcharge"]
        + c["congestion_surcharge"]
        + c["airport_fee"],
        2,
    )
    ts = pa.timestamp("us")
    flag = pa.DictionaryArray.from_arrays(
        pa.array(c["store_fwd"].astype(np.int8), mask=flex), pa.array(["N", "Y"])
    ).cast(pa.string())
    columns = {
        "VendorID": pa.array(c["VendorID"], type=pa.int64()),
        "tpep_pickup_datetime": pa.array(c["pickup_us"], type=pa.int64()).cast(ts),
        "tpep_dropoff_datetime": pa.array(c["dropoff_us"], type=pa.int64()).cast(ts),
        "passenger_count": pa.array(c["passenger_count"], mask=flex, type=pa.float64()),
        "trip_distance": pa.array(c["trip_distance"], type=pa.float64()),
        "RatecodeID": pa.array(c["RatecodeID"], mask=flex, type=pa.float64()),
        "store_and_fwd_flag": flag,
        "PULocationID": pa.array(c["PULocationID"], type=pa.int64()),
        "DOLocationID": pa.array(c["DOLocationID"], type=pa.int64()),
        "payment_type": pa.array(c["payment_type"], type=pa.int64()),
        "fare_amount": pa.array(c["fare_amount"], type=pa.float64()),
        "extra": pa.array(c["extra"], type=pa.float64()),
        "mta_tax": pa.array(c["mta_tax"], type=pa.float64()),
        "tip_amount": pa.array(c["tip_amount"], type=pa.float64()),
        "tolls_amount": pa.array(c["tolls_amount"], type=pa.float64()),
        "improvement_surcharge": pa.array(c["improvement_surcharge"], type=pa.float64()),
        "total_amount": pa.array(total, type=pa.float64()),
        "congestion_surcharge": pa.array(c["congestion_surcharge"], mask=flex, type=pa.float64()),
        "airport_fee": pa.array(c["airport_fee"], mask=flex, type=pa.float64()),
    }
    return pa.Table.from_pydict(columns, schema=TRIPS_SCHEMA_2023)


def iter_sample_trip_tables(month: str, rows: int, seed: int = 2023, chunk_rows: int = CHUNK_ROWS):
    """Yield the sample month as Arrow tables of at most `chunk_rows` rows (2023 TLC layout)."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    start, end = parse_month(month)
    month_start_us, month_end_us = _epoch_us(start), _epoch_us(end)
    hour_p, hour_of_day, hour_weekend = _month_hours(start, end)

    # Global decisions (which rows carry which quirk, how many pickups per area) from one RNG.
    plan_rng = np.random.default_rng([seed, start.year, start.month, 0])
    plan = _quirk_plan(rows)
    quirk_rows = plan_rng.choice(rows, size=sum(plan.values()), replace=False)
    quirk_slices: dict[str, np.ndarray] = {}
    offset = 0
    for name, count in plan.items():
        quirk_slices[name] = np.sort(quirk_rows[offset : offset + count])
        offset += count
    share = _PICKUP_SHARE / _PICKUP_SHARE.sum()
    area_counts = plan_rng.multinomial(rows, share)
    # Every airport and area always present (a few trips), taken from Manhattan's share.
    minimum = min(5, rows // 200)
    for a in range(len(AREAS)):
        if a != MAN and area_counts[a] < minimum:
            area_counts[MAN] -= minimum - area_counts[a]
            area_counts[a] = minimum

    n_chunks = (rows + chunk_rows - 1) // chunk_rows
    # Split each area's count across chunks in proportion to chunk size (exact totals).
    chunk_sizes = np.array([min(chunk_rows, rows - i * chunk_rows) for i in range(n_chunks)])
    remaining = area_counts.copy()
    for i, n in enumerate(chunk_sizes):
        if i == n_chunks - 1:
            counts = remaining
        else:
            counts = plan_rng.multivariate_hypergeometric(remaining, int(n))
        remaining = remaining - counts
        lo = i * chunk_rows
        rng = np.random.default_rng([seed, start.year, start.month, i + 1])
        c = _chunk(rng, int(n), month_start_us, hour_p, hour_of_day, hour_weekend, counts)
        local = {k: v[(v >= lo) & (v < lo + n)] - lo for k, v in quirk_slices.items()}
        flex = _apply_quirks(rng, c, local, month_start_us, month_end_us)
        yield _to_table(c, flex)


def write_sample_trips(month: str, dest_dir: Path, rows: int, seed: int = 2023) -> Path:
    """Write ``dest_dir/yellow_tripdata_YYYY-MM.parquet``: `rows` synthetic trips, 2023 layout.

    Deterministic (same month, rows, seed -> same bytes); written to a temporary file first and
    moved into place with os.replace.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / trips_file_name(month)
    tmp = new_part_file(dest)
    try:
        with pq.ParquetWriter(tmp, TRIPS_SCHEMA_2023, compression="snappy") as writer:
            for table in iter_sample_trip_tables(month, rows, seed):
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def write_sample_zones(dest_dir: Path) -> Path:
    """Write ``dest_dir/taxi_zone_lookup.csv`` in the TLC's layout (265 zones, same quoting)."""
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / ZONES_FILE_NAME
    tmp = new_part_file(dest)
    try:
        with open(tmp, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n")
            writer.writerow(ZONE_COLUMNS)
            writer.writerows(ZONES)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
