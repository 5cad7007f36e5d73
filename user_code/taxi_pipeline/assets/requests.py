"""Ad-hoc requests: a JSON file dropped in the requests folder becomes a chart.

A request file looks like `{"borough": "Manhattan", "start_date": "2023-01-01",
"end_date": "2023-01-31"}`; the `adhoc_request_sensor` turns each new or changed file into one
run of `adhoc_request_job` with this config.
"""

import json
from datetime import date
from pathlib import Path

import dagster as dg
from dagster_dbt import get_asset_key_for_model
from pydantic import ValidationError, field_validator, model_validator

from taxi_pipeline.charts import new_figure, save_figure
from taxi_pipeline.pools import WAREHOUSE_POOL
from taxi_pipeline.resources import Folders, Warehouse


class AdhocRequestConfig(dg.Config):
    filename: str
    borough: str
    # ISO dates (YYYY-MM-DD), both included. Dagster config has no date type: validated here.
    start_date: str
    end_date: str

    @field_validator("start_date", "end_date")
    @classmethod
    def _iso_date(cls, value: str) -> str:
        try:
            return date.fromisoformat(value).isoformat()
        except (TypeError, ValueError) as error:
            raise ValueError(f"{value!r} is not a date of the form YYYY-MM-DD") from error

    @model_validator(mode="after")
    def _ordered(self) -> "AdhocRequestConfig":
        if self.end_date < self.start_date:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        return self


class BadRequestFile(ValueError):
    """A request file that cannot become a run; the message names the file and what is wrong."""


REQUEST_KEYS = ("borough", "start_date", "end_date")
_EXPECTED = "expected borough, start_date, end_date as YYYY-MM-DD"


def read_request_file(path: Path) -> AdhocRequestConfig:
    """Parse and validate one request file, or raise `BadRequestFile`."""
    try:
        # utf-8-sig: editors on Windows save JSON with a byte-order mark, which json refuses.
        payload = json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequestFile(f"{path.name}: not readable JSON ({error})") from error
    if not isinstance(payload, dict):
        raise BadRequestFile(
            f"{path.name}: expected a JSON object with borough, start_date, end_date"
        )
    # Keys are checked here, not by pydantic: Dagster's Config reports a missing key as "Input
    # should be a valid string", and `filename` (set from the file's name) would be a TypeError.
    missing = [key for key in REQUEST_KEYS if key not in payload]
    unknown = sorted(key for key in payload if key not in REQUEST_KEYS)
    problems = [f"missing key {key}" for key in missing]
    problems += [f"unknown key {key}" for key in unknown]
    if problems:
        raise BadRequestFile(
            f"{path.name}: {'; '.join(problems)}; a request holds exactly the keys "
            f"{', '.join(REQUEST_KEYS)} (dates as YYYY-MM-DD)"
        )
    try:
        return AdhocRequestConfig(filename=path.name, **payload)
    except ValidationError as error:
        problems = [
            f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}"
            + (f" (got {e['input']!r})" if e["type"] == "string_type" else "")
            for e in error.errors()
        ]
        raise BadRequestFile(f"{path.name}: {'; '.join(problems)} ({_EXPECTED})") from error


def build_request_asset(dbt_analytics: dg.AssetsDefinition) -> dg.AssetsDefinition:
    """The ad-hoc chart, downstream of the staging models it reads."""

    @dg.asset(
        deps=[
            get_asset_key_for_model([dbt_analytics], "stg_trips"),
            get_asset_key_for_model([dbt_analytics], "stg_zones"),
        ],
        group_name="requests",
        kinds={"python", "matplotlib"},
        pool=WAREHOUSE_POOL,
        description="Chart of daily trips picked up in one borough over a date range, one per "
        "request file in the requests folder.",
    )
    def adhoc_request(config: AdhocRequestConfig, warehouse: Warehouse, folders: Folders):
        with warehouse.get_connection() as conn:
            boroughs = [
                row[0] for row in conn.execute("select distinct borough from stg_zones").fetchall()
            ]
            if config.borough not in boroughs:
                raise dg.Failure(
                    f"Request {config.filename}: unknown borough {config.borough!r}; "
                    f"use one of {', '.join(sorted(b for b in boroughs if b))}."
                )
            rows = conn.execute(
                """
                select cast(trips.pickup_datetime as date) as day, count(*) as trips
                from stg_trips as trips
                join stg_zones as zones on trips.pickup_zone_id = zones.zone_id
                where zones.borough = ?
                  and trips.pickup_datetime >= ?
                  and trips.pickup_datetime < ? + interval 1 day
                group by all
                order by day
                """,
                [
                    config.borough,
                    date.fromisoformat(config.start_date),
                    date.fromisoformat(config.end_date),
                ],
            ).fetchall()

        figure, axes = new_figure(10, 4)
        axes.bar([row[0] for row in rows], [row[1] for row in rows])
        axes.set_title(f"Trips from {config.borough}, {config.start_date} to {config.end_date}")
        axes.set_ylabel("trips")
        figure.autofmt_xdate()
        metadata = save_figure(figure, folders.output("adhoc", f"{Path(config.filename).stem}.png"))
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "request": config.filename,
                "trips": int(sum(row[1] for row in rows)),
                "days_with_trips": len(rows),
            }
        )

    return adhoc_request
