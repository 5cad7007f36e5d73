"""Python assets downstream of the dbt marts: the airport chart and the weekly CSV."""

import csv
import os
from datetime import timedelta

import dagster as dg
from dagster_dbt import get_asset_key_for_model

from taxi_pipeline.automation import MONTH_LOADS, keep_fresh
from taxi_pipeline.charts import new_figure, save_figure
from taxi_pipeline.pools import WAREHOUSE_POOL
from taxi_pipeline.resources import Folders, Warehouse

WEEKLY_COLUMNS = ["period", "num_trips", "passenger_count", "total_amount", "trip_distance"]


def build_metric_assets(
    dbt_analytics: dg.AssetsDefinition, weekly: dg.WeeklyPartitionsDefinition
) -> list[dg.AssetsDefinition]:
    """The chart and the weekly CSV, downstream of the dbt models they read."""
    stg_trips = get_asset_key_for_model([dbt_analytics], "stg_trips")

    @dg.asset(
        deps=[get_asset_key_for_model([dbt_analytics], "location_metrics")],
        group_name="metrics",
        kinds={"python", "matplotlib"},
        pool=WAREHOUSE_POOL,
        automation_condition=keep_fresh(),
        description="Bar chart of trips from each airport (EWR, JFK, LaGuardia) by destination "
        "borough.",
    )
    def airport_trips(warehouse: Warehouse, folders: Folders):
        with warehouse.get_connection() as conn:
            rows = conn.execute(
                """
                select pickup_zone, destination_borough, sum(trips) as trips
                from location_metrics
                where from_airport
                group by all
                order by destination_borough, pickup_zone
                """
            ).fetchall()
        if not rows:
            raise dg.Failure(
                "location_metrics has no trips from an airport: is raw_taxis.zones loaded?"
            )

        airports = sorted({row[0] for row in rows})
        boroughs = sorted({row[1] for row in rows})
        counts = {(airport, borough): trips for airport, borough, trips in rows}
        figure, axes = new_figure(10, 5)
        width = 0.8 / len(airports)
        for index, airport in enumerate(airports):
            axes.bar(
                [b + index * width for b in range(len(boroughs))],
                [counts.get((airport, borough), 0) for borough in boroughs],
                width=width,
                label=airport,
            )
        axes.set_xticks([b + 0.4 - width / 2 for b in range(len(boroughs))], boroughs, rotation=20)
        axes.set_ylabel("trips")
        axes.set_title("Trips from each airport by destination borough")
        axes.legend()

        metadata = save_figure(figure, folders.output("airport_trips.png"))
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "airport_trips": int(sum(counts.values())),
                "airports": len(airports),
            }
        )

    @dg.asset(
        deps=[stg_trips, MONTH_LOADS],
        partitions_def=weekly,
        # A backfill of many weeks is one run that rewrites their rows together.
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name="metrics",
        kinds={"python", "csv"},
        pool=WAREHOUSE_POOL,
        automation_condition=keep_fresh(ignore_updates_of=dg.AssetSelection.assets(stg_trips)),
        description="Weekly totals (trips, passengers, amount, distance) in "
        "outputs/trips_by_week.csv, "
        "one row per week; materializing a week replaces its row.",
    )
    def trips_by_week(context: dg.AssetExecutionContext, warehouse: Warehouse, folders: Folders):
        window = context.partition_time_window
        with warehouse.get_connection() as conn:
            # Weekly partitions start on Sunday; DuckDB's dayofweek() is 0 for Sunday.
            fresh = conn.execute(
                """
                select
                    strftime(
                        cast(pickup_datetime as date)
                            - cast(dayofweek(pickup_datetime) as integer),
                        '%Y-%m-%d'
                    ),
                    count(*),
                    coalesce(sum(passenger_count), 0),
                    round(coalesce(sum(total_amount), 0), 2),
                    round(coalesce(sum(trip_distance), 0), 2)
                from stg_trips
                where pickup_datetime >= ? and pickup_datetime < ?
                group by 1
                """,
                [window.start.replace(tzinfo=None), window.end.replace(tzinfo=None)],
            ).fetchall()

        # Every week of the window gets a row, zero when no trip fell in it.
        weeks = {}
        week = window.start
        while week < window.end:
            weeks[week.strftime("%Y-%m-%d")] = [week.strftime("%Y-%m-%d"), 0, 0, 0.0, 0.0]
            week += timedelta(days=7)
        for row in fresh:
            weeks[row[0]] = list(row)

        path = folders.output("trips_by_week.csv")
        kept = []
        if path.exists():
            with path.open(newline="", encoding="utf-8") as file:
                kept = [row for row in csv.DictReader(file) if row["period"] not in weeks]
        merged = kept + [dict(zip(WEEKLY_COLUMNS, row, strict=True)) for row in weeks.values()]
        merged.sort(key=lambda row: row["period"])
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="", encoding="utf-8") as file:
            writer = csv.DictWriter(file, fieldnames=WEEKLY_COLUMNS)
            writer.writeheader()
            writer.writerows(merged)
        os.replace(tmp, path)

        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(path)),
                "weeks_written": len(weeks),
                "trips_in_window": int(sum(row[1] for row in weeks.values())),
                "rows_in_file": len(merged),
            }
        )

    return [airport_trips, trips_by_week]
