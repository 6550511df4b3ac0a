-- Every order that has payments must have been paid a positive total.
-- Returns the offending orders; the test passes when it returns no rows.
select
    order_id,
    sum(amount) as total_amount

from {{ ref('stg_payments') }}

group by order_id

having sum(amount) <= 0
