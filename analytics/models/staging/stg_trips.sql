-- One row per loaded trip (1:1 with raw_taxis.trips, no filtering: the loader already decided
-- which rows to keep, and the marts must add up to what was loaded).
with trips as (
    select * from {{ source('raw_taxis', 'trips') }}
)

select
    trip_id,
    vendor_id,
    pickup_zone_id,
    dropoff_zone_id,
    rate_code_id,
    payment_type,
    pickup_datetime,
    dropoff_datetime,
    -- exact, from epoch seconds (date_diff('minute', ...) would count minute boundaries instead)
    cast((epoch(dropoff_datetime) - epoch(pickup_datetime)) / 60.0 as double) as duration_minutes,
    trip_distance,
    passenger_count,
    fare_amount,
    tip_amount,
    total_amount,
    partition_date
from trips
