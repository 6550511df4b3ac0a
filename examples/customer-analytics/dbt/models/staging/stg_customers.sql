with source as (

    select * from {{ ref('raw_customers') }}

),

renamed as (

    select
        cast(customer_id as integer) as customer_id,
        first_name,
        last_name,
        lower(email) as email,
        upper(country) as country_code,
        cast(signup_date as date) as signup_date

    from source

)

select * from renamed
