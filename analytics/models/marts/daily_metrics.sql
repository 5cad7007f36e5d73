{#-
  Daily trip metrics, incremental. Dagster materializes it one day-partition window at a time with
  `dbt build --event-time-start <start> --event-time-end <end>` (half-open [start, end); see
  macros/trip_window.sql for why these flags and not --vars). The tag `daily_partitioned` is what
  puts a model into Dagster's daily-partitioned dbt assets (taxi_pipeline/assets/dbt.py).

  * With a window, trips are filtered to it in the CTE that reads stg_trips, before
    aggregating, on every run (also the first, non-incremental build). raw_taxis.trips is loaded
    month by month, so DuckDB's row-group min/max skip every other month: a day costs the same
    with one month loaded as with twelve.
  * Without a window (a developer's plain `dbt build`), every loaded trip is aggregated.
  * delete+insert on date_of_business replaces the days the run produces; the pre-hook first
    deletes every day the window covers, so a day that no longer has trips does not keep a stale
    row. Same window twice -> same rows; two windows -> their union. Windows are expected to be
    whole days (Dagster daily partitions are).
-#}
{%- set window = trip_window() -%}
{{
    config(
        materialized='incremental',
        tags=['daily_partitioned'],
        incremental_strategy='delete+insert',
        unique_key='date_of_business',
        on_schema_change='fail',
        pre_hook="{{ daily_metrics_clear_window() }}",
    )
}}

with trips as (
    select
        pickup_datetime,
        duration_minutes,
        fare_amount
    from {{ ref('stg_trips') }}
    {%- if window is not none %}
    where pickup_datetime >= {{ window.min }}
      and pickup_datetime < {{ window.max }}
    {%- endif %}
),

daily as (
    select
        cast(pickup_datetime as date) as date_of_business,
        cast(count(*) as bigint) as trip_count,
        avg(duration_minutes) as avg_trip_duration_minutes,
        avg(fare_amount) as avg_fare_per_trip,
        cast(count(*) filter (where duration_minutes > 30) as bigint) as trips_over_30_min
    from trips
    group by cast(pickup_datetime as date)
)

select
    date_of_business,
    trip_count,
    cast(avg_trip_duration_minutes as double) as avg_trip_duration_minutes,
    cast(avg_fare_per_trip as double) as avg_fare_per_trip,
    trips_over_30_min,
    cast(trips_over_30_min as double) / trip_count as share_over_30_min
from daily
