-- Trips aggregated by pickup zone and destination borough, over every loaded trip.
-- Left joins: a trip whose zone is missing from the lookup still counts (labelled 'Unknown'),
-- so sum(trips) always equals the number of rows in stg_trips.
with trips as (
    select * from {{ ref('stg_trips') }}
),

zones as (
    select * from {{ ref('stg_zones') }}
)

select
    trips.pickup_zone_id,
    coalesce(pickup_zones.zone_name, 'Unknown') as pickup_zone,
    coalesce(pickup_zones.borough, 'Unknown') as pickup_borough,
    coalesce(dropoff_zones.borough, 'Unknown') as destination_borough,
    coalesce(pickup_zones.is_airport, false) as from_airport,
    cast(count(*) as bigint) as trips,
    sum(trips.trip_distance) as total_distance,
    sum(trips.duration_minutes) as total_duration_minutes,
    sum(trips.fare_amount) as total_fare,
    cast(count(*) filter (where trips.duration_minutes > 30) as bigint) as trips_over_30_min
from trips
left join zones as pickup_zones
    on trips.pickup_zone_id = pickup_zones.zone_id
left join zones as dropoff_zones
    on trips.dropoff_zone_id = dropoff_zones.zone_id
group by
    trips.pickup_zone_id,
    coalesce(pickup_zones.zone_name, 'Unknown'),
    coalesce(pickup_zones.borough, 'Unknown'),
    coalesce(dropoff_zones.borough, 'Unknown'),
    coalesce(pickup_zones.is_airport, false)
