select
    id as order_id,
    customer as customer_id,
    cast(ordered_at as date) as ordered_at,
    cast(order_total as integer) as order_total
from {{ source('ecom', 'raw_orders') }}
