{{ config(materialized='incremental', incremental_strategy='merge', unique_key='account_id') }}

select account_id, name, balance, updated_at
from {{ ref('raw_accounts') }}
{% if is_incremental() %}
where updated_at > (select max(updated_at) from {{ this }})
{% endif %}
