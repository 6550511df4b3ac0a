-- dbt-spark's partition_by list: identity(customer_id)
{{ config(materialized='table', partition_by=['customer_id']) }}
select * from {{ ref('raw_orders') }}
