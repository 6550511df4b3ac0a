select
    event_id,
    user_id,
    event_type,
    cast(occurred_on as date) as occurred_on
from {{ ref('raw_events') }}
