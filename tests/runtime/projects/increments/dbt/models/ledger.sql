{{ config(materialized='incremental', incremental_strategy='delete+insert',
          unique_key=['account_id', 'day']) }}

-- Re-processes the last day every run (a look-back): identical rows deleted and inserted again.
select account_id, day, amount
from {{ ref('raw_ledger') }}
{% if is_incremental() %}
where day >= (select max(day) from {{ this }})
{% endif %}
