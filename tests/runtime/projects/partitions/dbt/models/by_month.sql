-- dbt-duckdb's own key, DuckLake's hierarchy: year(ordered_at), month(ordered_at) → month
{{ config(materialized='table', partitioned_by=['year(ordered_at)', 'month(ordered_at)']) }}
select * from {{ ref('raw_orders') }}
