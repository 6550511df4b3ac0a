with customers as (

    select * from {{ ref('stg_customers') }}

),

orders as (

    select * from {{ ref('orders') }}

),

customer_totals as (

    select
        customer_id,
        count(*) as number_of_orders,
        sum(case when status = 'completed' then 1 else 0 end) as number_of_completed_orders,
        sum(case when status = 'returned' then 1 else 0 end) as number_of_returned_orders,
        sum(case when status <> 'returned' then amount else 0 end) as total_revenue,
        sum(case when status = 'completed' then amount else 0 end) as completed_revenue,
        sum(case when status = 'returned' then amount else 0 end) as returned_amount

    from orders

    group by customer_id

),

final as (

    select
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        customers.country_code,
        cast(coalesce(customer_totals.number_of_orders, 0) as integer) as number_of_orders,
        cast(coalesce(customer_totals.number_of_completed_orders, 0) as integer) as number_of_completed_orders,
        cast(coalesce(customer_totals.number_of_returned_orders, 0) as integer) as number_of_returned_orders,
        cast(coalesce(customer_totals.total_revenue, 0) as numeric(12, 2)) as total_revenue,
        cast(coalesce(customer_totals.completed_revenue, 0) as numeric(12, 2)) as completed_revenue,
        cast(coalesce(customer_totals.returned_amount, 0) as numeric(12, 2)) as returned_amount,
        cast(
            case
                when customer_totals.number_of_orders - customer_totals.number_of_returned_orders > 0
                    then customer_totals.total_revenue
                        / (customer_totals.number_of_orders - customer_totals.number_of_returned_orders)
            end
            as numeric(12, 2)
        ) as average_order_value

    from customers

    left join customer_totals
        on customers.customer_id = customer_totals.customer_id

)

select * from final
