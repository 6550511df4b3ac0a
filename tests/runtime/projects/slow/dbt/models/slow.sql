-- 10^11 rows to filter: hours of work for DuckDB, stopped by the tests long before.
select count(*) as n
from range(100000000) as a(i), range(1000) as b(j)
where (a.i * b.j) % 7 = 3
