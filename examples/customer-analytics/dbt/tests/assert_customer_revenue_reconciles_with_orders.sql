-- The revenue summed over customers must equal the amount of all orders that
-- were not returned: no order is lost or double-counted by the customer roll-up.
with customer_side as (

    select coalesce(sum(total_revenue), 0) as revenue
    from {{ ref('customer_revenue') }}

),

order_side as (

    select coalesce(sum(amount), 0) as revenue
    from {{ ref('orders') }}
    where status <> 'returned'

)

select
    customer_side.revenue as customer_revenue,
    order_side.revenue as order_revenue

from customer_side
cross join order_side

where customer_side.revenue <> order_side.revenue
