-- fast has no such column: dbt reports the compiled SQL's line, floe the source's
select
    id,
    no_such_column
from {{ ref('fast') }}
