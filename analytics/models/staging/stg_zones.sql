-- One row per TLC taxi zone, renamed for the marts. The real lookup's own labels ('Unknown',
-- 'N/A', 'EWR') are kept as they are; a NULL (e.g. a loader that parsed 'N/A' as missing)
-- becomes 'Unknown' / 'N/A' so that the marts never group on NULL.
with zones as (
    select * from {{ source('raw_taxis', 'zones') }}
)

select
    cast(zone_id as integer) as zone_id,
    coalesce(zone, 'Unknown') as zone_name,
    coalesce(borough, 'Unknown') as borough,
    coalesce(service_zone, 'N/A') as service_zone,
    coalesce(service_zone in ('Airports', 'EWR'), false) as is_airport
from zones
