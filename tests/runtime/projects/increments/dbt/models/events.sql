{{ config(materialized='incremental') }}

select event_id, kind, happened_at
from {{ ref('raw_events') }}
{% if is_incremental() %}
where event_id > (select max(event_id) from {{ this }})
{% endif %}
