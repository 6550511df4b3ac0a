select
    occurred_on,
    event_type,
    cast(count(*) as integer) as events
from {{ ref('stg_events') }}
group by occurred_on, event_type
