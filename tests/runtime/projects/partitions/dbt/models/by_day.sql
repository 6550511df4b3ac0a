-- floe's own form, in models/schema.yml: day(order_date), bucket[4](customer_id)
{{ config(materialized='table') }}
select * from {{ ref('raw_orders') }}
