with source as (

    select * from {{ ref('raw_payments') }}

),

renamed as (

    select
        cast(payment_id as integer) as payment_id,
        cast(order_id as integer) as order_id,
        lower(payment_method) as payment_method,
        -- amounts are stored in cents; convert to dollars
        cast(amount / 100.0 as numeric(12, 2)) as amount

    from source

)

select * from renamed
