with source as (

    select * from {{ ref('raw_orders') }}

),

renamed as (

    select
        cast(order_id as integer) as order_id,
        cast(customer_id as integer) as customer_id,
        cast(order_date as date) as order_date,
        lower(status) as status

    from source

)

select * from renamed
