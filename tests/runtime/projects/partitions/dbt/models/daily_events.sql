-- An incremental model partitioned with a Spark transform call: day(ordered_at)
{{ config(materialized='incremental', partition_by=['days(ordered_at)']) }}
select order_id, customer_id, ordered_at from {{ ref('raw_orders') }}
{% if is_incremental() %}
where order_id > (select max(order_id) from {{ this }})
{% endif %}
