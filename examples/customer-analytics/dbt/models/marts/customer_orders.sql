with customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('stg_orders') }}

),

customer_order_stats as (

    select
        customer_id,
        min(order_date) as first_order_date,
        max(order_date) as most_recent_order_date,
        count(*) as number_of_orders

    from orders

    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        customers.email,
        customers.country_code,
        customers.signup_date,
        customer_order_stats.first_order_date,
        customer_order_stats.most_recent_order_date,
        cast(coalesce(customer_order_stats.number_of_orders, 0) as integer) as number_of_orders,
        cast(customer_order_stats.first_order_date - customers.signup_date as integer) as days_to_first_order

    from customers

    left join customer_order_stats
        on customers.customer_id = customer_order_stats.customer_id

)

select * from final
